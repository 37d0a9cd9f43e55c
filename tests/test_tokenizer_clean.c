/* Wan's prompt cleaning (tok_clean_prompt): ftfy's fixes that reel reproduces, html.unescape
 * applied twice, and whitespace collapsing. Expected strings follow Python's html.unescape
 * (checked with CPython 3.11) and ftfy 6's rules as described in dit/tok_clean.c. */
#include "check.h"

#include "dit/error.h"
#include "dit/tokenizer.h"

#include <stdlib.h>
#include <string.h>

static void expect_clean(const char *in, const char *want)
{
    char *out = NULL;
    CHECK_OK(tok_clean_prompt(in, &out));
    CHECK(out && !strcmp(out, want), "clean('%s') = '%s', expected '%s'", in, out ? out : "(null)",
          want);
    free(out);
}

static void test_whitespace(void)
{
    expect_clean("  A  cat\t\tsits \n on a mat.  ", "A cat sits on a mat.");
    expect_clean("a\xC2\xA0\xE2\x80\x83"
                 "b\xE3\x80\x80"
                 "c\xE2\x80\xA8"
                 "d\r\ne\x0C"
                 "f",
                 "a b c d e f");
    expect_clean("", "");
    expect_clean(" \t\n ", "");
    expect_clean("zero\xE2\x80\x8Bwidth", "zero\xE2\x80\x8Bwidth"); /* U+200B is no whitespace */
}

static void test_html(void)
{
    expect_clean("Tom &amp;amp; Jerry", "Tom & Jerry");
    expect_clean("&amp;lt;b&amp;gt;", "<b>"); /* ftfy repeats until nothing changes */
    expect_clean("<b>fish &amp;amp; chips</b>", "<b>fish & chips</b>");
    expect_clean("<i>&amp;amp;amp;</i>", "<i>&amp;</i>"); /* '<': only the two html.unescape */
    expect_clean("a &lt; b\n<p>&amp;amp;amp;</p>", "a < b <p>&amp;</p>");
    expect_clean("<p>x</p>\n&amp;amp;amp;", "<p>x</p> &amp;"); /* ftfy stops unescaping for good */
    expect_clean("caf&#233; &#x41;&#X42; &#128512;", "caf\xC3\xA9 AB \xF0\x9F\x98\x80");
    expect_clean("&ampx &lt3 &copy2024", "&x <3 \xC2\xA9"
                                         "2024");
    expect_clean("P&EACUTE;REZ &NTILDE;", "P\xC3\x89REZ \xC3\x91"); /* ftfy's upper-case names */
    expect_clean("&notit; &Eacute", "\xC2\xACit; \xC3\x89");
    expect_clean("a&nbsp;b&Tab;c", "a b c");
    expect_clean("x&#0;y&#x110000;z&#150;w&#7;v", "x\xEF\xBF\xBDy\xEF\xBF\xBDz\xE2\x80\x93wv");
    expect_clean("x&#12a;y", "x a;y"); /* &#12 is a form feed; ftfy keeps the whole match */
    expect_clean("&unknown; & &;", "&unknown; & &;");
}

static void test_ftfy(void)
{
    expect_clean("\xE2\x80\x9CHello,\xE2\x80\x9D she said \xE2\x80\x94 it\xE2\x80\x99s fine",
                 "\"Hello,\" she said \xE2\x80\x94 it's fine");
    expect_clean("a\x01"
                 "b\x7F"
                 "c\x1B[31mred\x1B[0m",
                 "abcred");
    expect_clean("\xEF\xBB\xBFhello", "hello");
    expect_clean("price \xC2\x80 5, \xC2\x93quoted\xC2\x94", "price \xE2\x82\xAC 5, \"quoted\"");
    expect_clean(
        "\xEF\xAC\x81ne \xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3\xE3\x80\x80\xEF\xBD\xB6\xEF\xBE\x80",
        "fine ABC \xE3\x82\xAB\xE3\x82\xBF");
    expect_clean("\xC5\x89 \xC7\x86", "'n d\xC5\xBE"); /* ŉ -> ʼn -> 'n, ǆ -> dž */
    expect_clean("a\xFF"
                 "b",
                 "a\xEF\xBF\xBD"
                 "b");
    expect_clean("cafe\xCC\x81", "cafe\xCC\x81"); /* no NFC: the tokenizer's NFKC composes later */
}

int main(void)
{
    check_seed("test_tokenizer_clean");
    test_whitespace();
    test_html();
    test_ftfy();
    char *out;
    CHECK(tok_clean_prompt(NULL, &out) == REEL_E_INVALID, "NULL text accepted");
    return check_done();
}
