// The ack page keeps each time and value with its unit on one line with an inline span (shared/app/ack-page.ts): the
// text a test looks for is read without it.
export const inlineText = (html: string) => html.replace(/<span class="nw">([^<]*)<\/span>/g, '$1');
