/* test_ingest.c — FNV hash, JSON spans, line and statement readers, writer, dump staging. */
#include "check.h"
#include "ingest.h"

#include <zlib.h>

static void check_fnv(const char *text, const char *expected)
{
    char hex[16];
    snprintf(hex, sizeof hex, "%x", retape_fnv1a32_utf16(text, strlen(text)));
    CHECK_STR(hex, expected, text);
}

static void check_span(const char *json, const char *key, int rc_expected, const char *expected)
{
    size_t off = 0, len = 0;
    int rc = retape_json_value_span(json, strlen(json), key, &off, &len);
    char got[256] = "";
    if (rc == 1)
        snprintf(got, sizeof got, "%.*s", (int)len, json + off);
    CHECK(rc == rc_expected && (rc != 1 || strcmp(got, expected) == 0),
          "span of '%s' in %s -> %d '%s' (got %d '%s')", key, json, rc_expected, expected ? expected : "", rc, got);
}

static int collect(const retape_staged_row *row, void *ud)
{
    int *n = ud;
    if (row->col[0] && row->col[2])
        (*n)++;
    return 0;
}

int main(void)
{
    /* Values computed with the original's UTF-16 FNV-1a in another language. */
    check_fnv("", "811c9dc5");
    check_fnv("a", "e40c292c");
    check_fnv("\xc3\xa9", "6c0b6c44");            /* é: one UTF-16 unit */
    check_fnv("\xe2\x82\xac", "a93e2c4b");        /* €: one unit, three UTF-8 bytes */
    check_fnv("\xf0\x9f\x98\x80x", "9f58ba40");   /* 😀: a surrogate pair */
    check_fnv("{\"ticker\":\"AU\"}", "9b641407");

    check_span("{\"a\":1,\"payload\":{\"x\":[1,{\"y\":\"}\"}]},\"z\":2}", "payload", 1, "{\"x\":[1,{\"y\":\"}\"}]}");
    check_span(" { \"payload\" : \"s\\\"q\" } ", "payload", 1, "\"s\\\"q\"");
    check_span("{\"a\":null}", "a", 1, "null");
    check_span("{\"a\":1}", "payload", 0, NULL);
    check_span("{}", "payload", 0, NULL);
    check_span("[1]", "payload", -1, NULL);
    check_span("{\"a\":{\"b\":1}", "z", -1, NULL);

    char *dir = check_tempdir(), path[600], *err = NULL;
    snprintf(path, sizeof path, "%s/lines.gz", dir);
    gzFile gz = gzopen(path, "wb");
    gzputs(gz, "first\r\n\nthird line\n");
    for (int i = 0; i < 20000; i++)
        gzputc(gz, 'x'); /* a long last line without newline */
    gzclose(gz);
    retape_lines *lr = retape_lines_open(path, 0, 0, &err);
    const char *line;
    size_t len;
    long lineno;
    CHECK(lr && retape_lines_next(lr, &line, &len, &lineno, &err) == 1 && strcmp(line, "first") == 0 && lineno == 1,
          "gzip line 1 without CRLF");
    CHECK(retape_lines_next(lr, &line, &len, &lineno, &err) == 1 && len == 0 && lineno == 2, "empty line 2");
    CHECK(retape_lines_next(lr, &line, &len, &lineno, &err) == 1 && strcmp(line, "third line") == 0, "line 3");
    CHECK(retape_lines_next(lr, &line, &len, &lineno, &err) == 1 && len == 20000 && lineno == 4, "long unterminated line 4");
    CHECK(retape_lines_next(lr, &line, &len, &lineno, &err) == 0, "end of file");
    retape_lines_close(lr);
    err = NULL;
    CHECK(retape_lines_open("/nonexistent/file", 0, 0, &err) == NULL, "missing file refused");
    CHECK_CONTAINS(err, "/nonexistent/file: cannot open", "message names the file");
    retape_free(err);

    snprintf(path, sizeof path, "%s/dump.sql", dir);
    FILE *f = fopen(path, "w");
    fputs("PRAGMA foreign_keys=OFF;\n-- comment\nINSERT INTO \"ingest_receipts\" VALUES('A:1:x','A',1,0,1,'x',NULL,\n"
          "'{\"a\":\";\"}');\n\nINSERT INTO ingest_receipts (receipt_id, ticker, ts, bucket_5m, received_ts, payload_hash)"
          " VALUES ('B:2:y','B',2,0,2,'y'),('C:3:z','C',3,0,3,'z');\nINSERT INTO trades VALUES(1);\nDELETE FROM x", f);
    fclose(f);
    lr = retape_lines_open(path, 0, 0, &err);
    const char *sql;
    long first;
    size_t sql_len;
    CHECK(retape_sql_next(lr, &sql, &sql_len, &first, &err) == 1 && first == 1 && strncmp(sql, "PRAGMA", 6) == 0, "statement 1 at line 1");
    CHECK(retape_sql_next(lr, &sql, &sql_len, &first, &err) == 1 && first == 3 && strstr(sql, "A:1:x"), "multi-line statement named by its line 3 (after a comment line)");

    snprintf(path, sizeof path, "%s/w.db", dir);
    retape_writer *w = retape_writer_open(path, 2, &err);
    int staged = 0;
    CHECK(retape_writer_stage_sql(w, sql, collect, &staged, &err) == 1 && staged == 1, "dump insert staged (1 row)");
    CHECK(retape_sql_next(lr, &sql, &sql_len, &first, &err) == 1 && first == 6, "statement at line 6 after a blank line");
    staged = 0;
    CHECK(retape_writer_stage_sql(w, sql, collect, &staged, &err) == 2 && staged == 2, "multi-row insert staged (2 rows)");
    CHECK(retape_sql_next(lr, &sql, &sql_len, &first, &err) == 1 && first == 7, "statement at line 7");
    err = NULL;
    CHECK(retape_writer_stage_sql(w, sql, collect, &staged, &err) == -1, "insert into another table is refused");
    CHECK_CONTAINS(err, "no such table: trades", "the statement's own SQLite error");
    retape_free(err);
    err = NULL;
    CHECK(retape_writer_stage_sql(w, "DELETE FROM main.ingest_receipts;", collect, &staged, &err) == -1, "a delete is refused by the authorizer");
    CHECK_CONTAINS(err, "not authorized", "authorizer message");
    retape_free(err);
    err = NULL;
    CHECK(retape_sql_next(lr, &sql, &sql_len, &first, &err) == -1, "an unterminated last statement is an error");
    CHECK_CONTAINS(err, "line 8: statement not terminated", "message names its line");
    retape_free(err);
    retape_lines_close(lr);

    retape_receipt_row r = {.receipt_id = "A:1:x", .ticker = "A", .payload_hash = "x", .payload_json = "{}",
                            .payload_len = 2, .ts = 1, .bucket_5m = 0, .received_ts = 1};
    err = NULL;
    CHECK(retape_writer_insert(w, &r, &err) == 1 && retape_writer_insert(w, &r, &err) == 0, "insert then duplicate");
    CHECK(retape_writer_close(w, &err) == 0, "writer closes");
    free(dir);
    /* strict JSON: what cjson accepts but RFC 8259 does not */
    static const struct { const char *text; size_t bad_at; } strict[] = {
        {"{\"a\":[1,-2.5e+3,true,false,null,\"x\\u00e9\\n\"]}", 0}, {" {} ", 0}, {"[]", 0},
        {"{\"a\":-43.}", 10}, {"{\"a\":NaN}", 6}, {"{\"a\":0x10}", 7}, {"{\"a\":01}", 7},
        {"{\"a\":\"\x1e\"}", 7}, {"{\"a\":1,}", 8}, {"{\"a\":1} x", 9}, {"", 1}, {"\"\\q\"", 3},
    };
    for (size_t k = 0; k < sizeof strict / sizeof strict[0]; k++)
        CHECK(retape_json_invalid_at(strict[k].text, strlen(strict[k].text), NULL) == strict[k].bad_at,
              "strict JSON check of %s: %zu", strict[k].text, strict[k].bad_at);
    /* issue 24 #9, #12: finite numbers, no key twice in one object */
    static const struct { const char *text; size_t bad_at; const char *why; } strict2[] = {
        {"{\"a\":1e400}", 6, "a number out of range"}, {"{\"a\":-1e-400}", 0, NULL},
        {"{\"payload\":{},\"payload\":null}", 15, "a key repeated"},
        {"{\"a\":{\"b\":1,\"b\":2}}", 13, "a key repeated"}, {"[{\"b\":1},{\"b\":2}]", 0, NULL},
        {"{\"a\":1,\"ab\":2,\"b\":3}", 0, NULL},
    };
    for (size_t k = 0; k < sizeof strict2 / sizeof strict2[0]; k++) {
        const char *why = NULL;
        size_t at = retape_json_invalid_at(strict2[k].text, strlen(strict2[k].text), &why);
        CHECK(at == strict2[k].bad_at && (!strict2[k].why || (why && strstr(why, strict2[k].why))),
              "strict JSON check of %s: %zu %s (got %zu %s)", strict2[k].text, strict2[k].bad_at,
              strict2[k].why ? strict2[k].why : "", at, why ? why : "");
    }

    /* the .gz reader (issue 24 #11): two members, the second damaged; the
     * check finds it first; lines of the first member come back, none of
     * the second; trailing garbage after an intact file is reported at the end */
    dir = check_tempdir();
    char two[600];
    snprintf(two, sizeof two, "%s/two.gz", dir);
    unsigned char m1[256], m2[256];
    uLongf n1 = 0, n2 = 0;
    for (int which = 0; which < 2; which++) {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
        const char *text = which ? "third\nfourth\n" : "first\nsecond\n";
        zs.next_in = (unsigned char *)text;
        zs.avail_in = (uInt)strlen(text);
        zs.next_out = which ? m2 : m1;
        zs.avail_out = 256;
        deflate(&zs, Z_FINISH);
        *(which ? &n2 : &n1) = zs.total_out;
        deflateEnd(&zs);
    }
    m2[n2 - 6] ^= 0x40; /* inside the CRC of member 2 */
    f = fopen(two, "wb");
    fwrite(m1, 1, n1, f);
    fwrite(m2, 1, n2, f);
    fclose(f);
    lr = retape_lines_open(two, 0, 1, &err);
    CHECK(lr && retape_lines_problem(lr) && strstr(retape_lines_problem(lr), "gzip member 2"),
          "the damaged member is known when the file opens: %s", lr && retape_lines_problem(lr) ? retape_lines_problem(lr) : "none");
    CHECK(retape_lines_next(lr, &line, &len, &lineno, &err) == 1 && strcmp(line, "first") == 0, "member 1, line 1");
    CHECK(retape_lines_next(lr, &line, &len, &lineno, &err) == 1 && strcmp(line, "second") == 0, "member 1, line 2");
    err = NULL;
    CHECK(retape_lines_next(lr, &line, &len, &lineno, &err) == -1, "nothing of member 2");
    CHECK_CONTAINS(err, "gzip member 2", "the read error names the member");
    retape_free(err);
    retape_lines_close(lr);
    m2[n2 - 6] ^= 0x40;
    f = fopen(two, "wb");
    fwrite(m1, 1, n1, f);
    fwrite(m2, 1, n2, f);
    fputs("junk", f);
    fclose(f);
    err = NULL;
    lr = retape_lines_open(two, 0, 1, &err);
    int got = 0, rc;
    while ((rc = retape_lines_next(lr, &line, &len, &lineno, &err)) == 1)
        got++;
    CHECK(got == 4 && rc == -1 && err && strstr(err, "trailing garbage"), "trailing garbage: 4 lines, then reported (%d, %s)",
          got, err ? err : "");
    retape_free(err);
    retape_lines_close(lr);

    /* the line cap and blank lines (issue 24 #13) */
    snprintf(path, sizeof path, "%s/cap.txt", dir);
    f = fopen(path, "wb");
    fputs("short\n", f);
    for (int i = 0; i < 300; i++)
        fputc('y', f);
    fputs("\n\n\n \t\r\nlast\n", f);
    fclose(f);
    err = NULL;
    lr = retape_lines_open(path, 100, 1, &err);
    CHECK(retape_lines_next(lr, &line, &len, &lineno, &err) == 1 && lineno == 1, "cap: line 1 read");
    CHECK(retape_lines_next(lr, &line, &len, &lineno, &err) == 2 && line == NULL && len == 300 && lineno == 2,
          "cap: line 2 over the cap, its length told, not kept");
    CHECK(retape_lines_next(lr, &line, &len, &lineno, &err) == 1 && strcmp(line, "last") == 0 && lineno == 6,
          "blank lines skipped, still counted (line %ld)", lineno);
    retape_lines_close(lr);

    /* each dump statement stands alone (issue 24 #14) */
    snprintf(path, sizeof path, "%s/cut.sql", dir);
    f = fopen(path, "wb");
    fputs("INSERT INTO ingest_receipts VALUES('A',\nINSERT INTO ingest_receipts VALUES('B');\n"
          "/* open comment\nCREATE TABLE x(a);\n", f);
    fclose(f);
    err = NULL;
    lr = retape_lines_open(path, 0, 0, &err);
    CHECK(retape_sql_next(lr, &sql, &sql_len, &first, &err) == 3 && first == 1 && err && strstr(err, "before line 2"),
          "a statement cut short is rejected where the next starts: %s", err ? err : "");
    retape_free(err);
    err = NULL;
    CHECK(retape_sql_next(lr, &sql, &sql_len, &first, &err) == 1 && first == 2 && strstr(sql, "'B'"), "the next one is kept");
    CHECK(retape_sql_next(lr, &sql, &sql_len, &first, &err) == 3, "an open comment is rejected");
    retape_free(err);
    err = NULL;
    CHECK(retape_sql_next(lr, &sql, &sql_len, &first, &err) == 1 && strstr(sql, "CREATE TABLE"), "the statement after it kept");
    retape_lines_close(lr);
    free(dir);
    return done_testing();
}
