/* html_text.h - a plain-text rendering of an html body, for the
 * text/plain part mime.c writes beside an html-only message. Pure; any
 * thread. */
#ifndef HTML_TEXT_H
#define HTML_TEXT_H

/* html_text - a plain-text rendering of html (UTF-8) for the
 * text/plain part of an html-only message; caller frees. Tags are
 * dropped (script, style, head and title with their content), character
 * references decoded (the common names and &#...;, invalid ones become
 * U+FFFD), white space collapsed outside <pre>, block elements (p, div,
 * br, li, tr, headings, ...) become line breaks, table cells are spaced,
 * a list item starts with "- ", an image gives its alt text and a link
 * reads "text (url)" (the url alone when it is also the text; #fragment
 * and javascript: links give their text only). Never fails: unclosed tags
 * or comments end the text, the result is valid UTF-8 of at most
 * MIME_FILLED_MAX octets, lines end in LF, it ends in one LF unless empty. */
char *html_text(const char *html);

#endif
