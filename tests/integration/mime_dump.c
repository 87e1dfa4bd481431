/* mime_dump - writes sample messages composed by warmup-service/mime.c for
 * tests/integration/test_mime.sh and test_maildev.sh.
 *
 *   mime_dump DIR
 *       for each sample NAME: DIR/NAME.eml (the message, CRLF) and
 *       DIR/NAME.want.json {"subject","text","html","from_name","from",
 *       "to_name","to","message_id","list_unsubscribe","date_ms"} (the inputs).
 *       Prints the sample names, one a line. Exit 0, or 1 on any error.
 */
#include "buf.h"
#include "jsonx.h"
#include "mime.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* repeat - s n times; caller frees */
static char *repeat(const char *s, int n)
{
    size_t l = strlen(s);
    char *r = xmalloc(l * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        memcpy(r + l * (size_t)i, s, l);
    r[l * (size_t)n] = '\0';
    return r;
}

static void put_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

/* write_file - 0 or -1 with a message on stderr */
static int write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "mime_dump: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* dump - compose one sample into DIR/NAME.eml + DIR/NAME.want.json */
static int dump(const char *dir, const char *name, const struct mime_input *in)
{
    struct buf b;
    char err[160], path[4096];
    buf_init(&b, 1 << 24);
    int rc = mime_compose(in, &b, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "mime_dump: %s: %s\n", name, err);
        goto out;
    }
    snprintf(path, sizeof path, "%s/%s.eml", dir, name);
    rc = write_file(path, b.data, b.len);
    if (rc != 0)
        goto out;
    json_object *o = json_object_new_object();
    put_str(o, "subject", in->subject);
    put_str(o, "text", in->text);
    put_str(o, "html", in->html);
    put_str(o, "from_name", in->from_name);
    put_str(o, "from", in->from);
    put_str(o, "to_name", in->to_name);
    put_str(o, "to", in->to);
    put_str(o, "message_id", in->message_id);
    put_str(o, "list_unsubscribe", in->list_unsubscribe);
    json_object_object_add(o, "date_ms", json_object_new_int64(in->date_ms));
    char *js = jsonx_to_string(o);
    json_object_put(o);
    snprintf(path, sizeof path, "%s/%s.want.json", dir, name);
    rc = write_file(path, js, strlen(js));
    free(js);
    if (rc == 0)
        printf("%s\n", name);
out:
    buf_cleanup(&b);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mime_dump DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    char *e200 = repeat("\xc3\xa9", 200), *emoji = repeat("\xf0\x9f\x98\x80", 30),
         *longsubj = repeat(" Weekly deliverability report", 8), *l1000 = repeat("0123456789", 100),
         *u1000 = repeat("\xc3\xa9", 1000);
    char *text = xasprintf("Hello J\xc3\xbcrgen,\n\ntrailing spaces   \n= signs == here\n.\n"
                           "a long line: %s\nnon-ASCII: %s\nbye\n",
                           l1000, u1000);
    char *html = xasprintf("<html><body><p style=\"color: #333\">Hello</p>\r\n"
                           "<p>%s</p>\r\n<p>%s</p>\r\n.\r\n</body></html>",
                           l1000, u1000);
    const struct {
        const char *name;
        struct mime_input in;
    } rows[] = {
        {"ascii",
         {.from = "noreply@d.com",
          .from_name = "Warmup",
          .to = "alice@example.com",
          .to_name = "Alice",
          .subject = "Hello",
          .text = "Hi Alice,\nbye\n",
          .message_id = "<email-1.9f2c@d.com>",
          .date_ms = 1795430252000}},
        {"utf8",
         {.from = "noreply@d.com",
          .from_name = "\xc3\x89quipe Warmup",
          .to = "jurgen@example.org",
          .to_name = "J\xc3\xbcrgen M\xc3\xbcller",
          .subject = e200,
          .text = "Gr\xc3\xbc\xc3\x9f"
                  "e \xe2\x82\xac 10\nno final newline",
          .message_id = "<email-2.a1b2c3@d.com>",
          .date_ms = 1795430252000}},
        {"multipart",
         {.from = "noreply@d.com",
          .from_name = "Warmup Team",
          .to = "bob@example.net",
          .to_name = "Bob",
          .subject = "Gr\xc3\xbc\xc3\x9f"
                     "e \xe2\x80\x93 multipart test",
          .text = text,
          .html = html,
          .message_id = "<email-3.ffee@d.com>",
          .date_ms = 1795430252000,
          .list_unsubscribe = "<mailto:unsubscribe@d.com?subject=email-3>"}},
        {"quoted",
         {.from = "news.letter@d.com",
          .from_name = "Smith, John \"JJ\" (news)",
          .to = "carol@example.com",
          .to_name = "",
          .subject = longsubj + 1,
          .text = "plain\r\ncrlf\r\n",
          .message_id = "<email-4.0001@d.com>",
          .date_ms = 0,
          .list_unsubscribe = "<mailto:u@d.com?subject=4>, <https://d.com/unsubscribe/"
                              "4?token=0123456789abcdef0123456789abcdef>"}},
        {"emoji",
         {.from = "noreply@d.com",
          .from_name = emoji,
          .to = "dave@example.com",
          .to_name = "\xe5\xb1\xb1\xe7\x94\xb0 \xe5\xa4\xaa\xe9\x83\x8e",
          .subject = emoji,
          .text = "\xf0\x9f\x98\x80\n",
          .html = "<p>\xf0\x9f\x98\x80</p>",
          .message_id = "<email-5.77@d.com>",
          .date_ms = 1795430252000}},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (dump(dir, rows[i].name, &rows[i].in) != 0)
            rc = 1;
    free(e200);
    free(emoji);
    free(longsubj);
    free(l1000);
    free(u1000);
    free(text);
    free(html);
    return rc;
}
