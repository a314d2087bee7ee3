/* kv_hint.h — the store's memtable insert-hint prefix (core/kv_hint.cpp). */
#ifndef RETAPE_KV_HINT_H
#define RETAPE_KV_HINT_H

#ifdef __cplusplus
extern "C" {
#endif

const char *retape_kv_insert_hint_options(void);

#ifdef __cplusplus
}
#endif

#endif
