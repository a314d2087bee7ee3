/*
 * kv_hint.cpp — the store's memtable insert hints (C-callable, the one
 * piece of RocksDB's C++ API the store uses).
 *
 * A replay writes one version of each ticker it met per bucket, under
 * "v:TICKER\0BUCKET": within a ticker the keys only grow, but one bucket's
 * batch visits every ticker, so each insert into the memtable's skiplist
 * searched from its top.  RocksDB keeps the position of the last insert of
 * each key prefix as a hint when memtable_insert_with_hint_prefix_extractor
 * is set; the C API has no setter for it, so this file registers a prefix
 * transform "retape.UpToNul" (a key up to and including its first NUL:
 * "v:TICKER\0", "t:TICKER\0"; a key without one is its own prefix) with
 * RocksDB's object registry, for kv.c to name in an options string.
 * The hint changes where a search starts, never what is stored.
 */
#include "kv_hint.h"

#include <rocksdb/slice_transform.h>
#include <rocksdb/utilities/object_registry.h>

#include <cstring>
#include <mutex>

namespace {

class UpToNul : public rocksdb::SliceTransform {
  public:
    static const char *kClassName() { return "retape.UpToNul"; }
    const char *Name() const override { return kClassName(); }
    rocksdb::Slice Transform(const rocksdb::Slice &key) const override
    {
        const void *nul = memchr(key.data(), 0, key.size());
        size_t n = nul ? (size_t)(static_cast<const char *>(nul) - key.data()) + 1 : key.size();
        return rocksdb::Slice(key.data(), n);
    }
    bool InDomain(const rocksdb::Slice &) const override { return true; }
};

} // namespace

/* Registers "retape.UpToNul" with RocksDB's default object library, once
 * per process (thread-safe).  Returns the options string that sets it as
 * the memtable's insert-hint prefix (a static string).  Cannot fail short
 * of an allocation failure, which C++ turns into std::terminate. */
extern "C" const char *retape_kv_insert_hint_options(void)
{
    static std::once_flag once;
    std::call_once(once, [] {
        rocksdb::ObjectLibrary::Default()->AddFactory<const rocksdb::SliceTransform>(
            UpToNul::kClassName(),
            [](const std::string &, std::unique_ptr<const rocksdb::SliceTransform> *guard, std::string *) {
                guard->reset(new UpToNul());
                return guard->get();
            });
    });
    return "memtable_insert_with_hint_prefix_extractor=retape.UpToNul";
}
