// The handful of S3 XML responses StrataFS reads (errors, ListObjectsV2, multipart) have a fixed,
// flat shape; extracting tags by name is exact for them and avoids an XML parser dependency.

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function xmlUnescape(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, entity: string) => {
    if (entity.startsWith('#x')) return String.fromCodePoint(parseInt(entity.slice(2), 16));
    if (entity.startsWith('#')) return String.fromCodePoint(parseInt(entity.slice(1), 10));
    return ENTITIES[entity];
  });
}

export function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&${Object.keys(ENTITIES).find((k) => ENTITIES[k] === c)};`);
}

/** Text of the first <tag>…</tag> in `xml`, unescaped, or undefined. */
export function xmlText(xml: string, tag: string): string | undefined {
  const open = xml.indexOf(`<${tag}>`);
  if (open < 0) return undefined;
  const start = open + tag.length + 2;
  const end = xml.indexOf(`</${tag}>`, start);
  return end < 0 ? undefined : xmlUnescape(xml.slice(start, end));
}

/** Raw inner text of every <tag>…</tag> block, in order (for <Contents> entries of a listing). */
export function xmlBlocks(xml: string, tag: string): string[] {
  const blocks: string[] = [];
  const openTag = `<${tag}>`;
  const closeTag = `</${tag}>`;
  let from = 0;
  for (;;) {
    const open = xml.indexOf(openTag, from);
    if (open < 0) return blocks;
    const end = xml.indexOf(closeTag, open);
    if (end < 0) return blocks;
    blocks.push(xml.slice(open + openTag.length, end));
    from = end + closeTag.length;
  }
}
