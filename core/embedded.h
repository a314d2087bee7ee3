/*
 * embedded.h — the Lua layer compiled into the binary (generated at build
 * time by tools/embed.c from every .lua file under lua/).
 */
#ifndef RETAPE_EMBEDDED_H
#define RETAPE_EMBEDDED_H

#include <stddef.h>

typedef struct retape_embedded_file {
    const char *name;   /* module name: lua/retape/cli.lua -> "retape.cli", lua/retape/init.lua -> "retape" */
    const char *path;   /* source path relative to the project, used as chunk name */
    const char *source;
    size_t length;
    const char *chunk;  /* the source compiled at build time (lua_dump, with debug information) */
    size_t chunk_length;
} retape_embedded_file;

/* The embedded module of that name, or NULL. */
const retape_embedded_file *retape_embedded_find(const char *name);
/* Every embedded module, in the order of the build's file list, ended by
 * an entry whose name is NULL. */
const retape_embedded_file *retape_embedded_files(void);

#endif
