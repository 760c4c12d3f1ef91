/* hevents.c - see hevents.h. */
#include "hevents.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_time(const void *a, const void *b)
{
    const hev_t *x = a, *y = b;
    return x->us < y->us ? -1 : x->us > y->us;
}

static bool parse_line(char *line, hev_t *e)
{
    memset(e, 0, sizeof *e);
    char *save = NULL;
    char *tok[4 + HEV_FIELDS];
    int n = 0;
    for (char *t = strtok_r(line, " \t\r\n", &save); t && n < 4 + HEV_FIELDS;
         t = strtok_r(NULL, " \t\r\n", &save))
        tok[n++] = t;
    if (n < 4)
        return false;
    char *end;
    e->us = strtoll(tok[0], &end, 10);
    if (*end || e->us <= 0)
        return false;
    e->pid = (int)strtol(tok[2], &end, 10);
    if (*end)
        return false;
    snprintf(e->role, sizeof e->role, "%s", tok[1]);
    snprintf(e->ev, sizeof e->ev, "%s", tok[3]);
    for (int i = 4; i < n; i++)
        snprintf(e->f[i - 4], HEV_FIELD_MAX, "%s", tok[i]);
    e->nf = n - 4;
    return true;
}

hevents_t *hevents_load(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    hevents_t *self = calloc(1, sizeof *self);
    size_t cap = 0;
    struct dirent *de;
    char path[4096], line[2048];
    while (self && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".hist") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        self->files++;
        while (fgets(line, sizeof line, f)) {
            if (self->n == cap) {
                cap = cap ? cap * 2 : 4096;
                hev_t *ev = realloc(self->ev, cap * sizeof *ev);
                if (!ev) {
                    fclose(f);
                    closedir(d);
                    hevents_destroy(&self);
                    return NULL;
                }
                self->ev = ev;
            }
            if (parse_line(line, &self->ev[self->n]))
                self->n++;
            else
                self->bad++;
        }
        fclose(f);
    }
    closedir(d);
    if (self && self->n > 1)
        qsort(self->ev, self->n, sizeof *self->ev, by_time);
    return self;
}

void hevents_destroy(hevents_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->ev);
    free(*self_p);
    *self_p = NULL;
}

size_t hevents_count(const hevents_t *self, const char *role, const char *ev, const char *id)
{
    size_t n = 0;
    for (size_t i = 0; i < self->n; i++) {
        const hev_t *e = &self->ev[i];
        if (strcmp(e->ev, ev) != 0 || (role && strcmp(e->role, role) != 0))
            continue;
        if (id && (e->nf < 1 || strcmp(e->f[0], id) != 0))
            continue;
        n++;
    }
    return n;
}
