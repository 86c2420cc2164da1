// Just enough XML for Route53's REST-XML requests: elements, text and the
// five entities plus numeric references. No DTDs, no CDATA, no namespaces
// beyond ignoring them — the SDK never sends those, and a request that uses
// them is rejected as malformed rather than half-understood.

export interface XmlElement {
  readonly name: string;
  readonly children: XmlElement[];
  text: string;
}

export class XmlSyntaxError extends Error {
  override name = 'XmlSyntaxError';
}

const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, ref: string) => {
    if (ref.startsWith('#x')) return String.fromCodePoint(parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(parseInt(ref.slice(1), 10));
    const named = ENTITIES[ref];
    if (named === undefined) throw new XmlSyntaxError(`unknown entity ${whole}`);
    return named;
  });
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&${Object.entries(ENTITIES).find(([, v]) => v === c)?.[0] ?? 'amp'};`);
}

/** Parses a document and returns its root element. Local names only (a `p:` prefix is dropped). */
export function parseXml(source: string): XmlElement {
  let i = 0;
  const skipProlog = (): void => {
    while (true) {
      while (i < source.length && /\s/.test(source[i] ?? '')) i++;
      if (source.startsWith('<?', i)) {
        const end = source.indexOf('?>', i);
        if (end < 0) throw new XmlSyntaxError('unterminated processing instruction');
        i = end + 2;
      } else if (source.startsWith('<!--', i)) {
        const end = source.indexOf('-->', i);
        if (end < 0) throw new XmlSyntaxError('unterminated comment');
        i = end + 3;
      } else {
        return;
      }
    }
  };
  skipProlog();
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (i < source.length) {
    const lt = source.indexOf('<', i);
    const current = stack.at(-1);
    if (lt < 0) {
      if (source.slice(i).trim() !== '' || current !== undefined) throw new XmlSyntaxError('unexpected end of document');
      break;
    }
    if (lt > i) {
      const text = source.slice(i, lt);
      if (current === undefined) {
        if (text.trim() !== '') throw new XmlSyntaxError('text outside the root element');
      } else {
        current.text += decodeEntities(text);
      }
    }
    if (source.startsWith('<!--', lt)) {
      const end = source.indexOf('-->', lt);
      if (end < 0) throw new XmlSyntaxError('unterminated comment');
      i = end + 3;
      continue;
    }
    if (source.startsWith('<!', lt) || source.startsWith('<?', lt)) throw new XmlSyntaxError('unsupported markup');
    const gt = source.indexOf('>', lt);
    if (gt < 0) throw new XmlSyntaxError('unterminated tag');
    const tag = source.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('/')) {
      const name = localName(tag.slice(1).trim());
      const open = stack.pop();
      if (open?.name !== name) throw new XmlSyntaxError(`mismatched closing tag </${name}>`);
      if (stack.length === 0) {
        skipProlog();
        if (i < source.length) throw new XmlSyntaxError('content after the root element');
      }
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const match = /^([A-Za-z_][\w.:-]*)/.exec(tag);
    if (match?.[1] === undefined) throw new XmlSyntaxError(`bad tag <${tag}>`);
    const element: XmlElement = { name: localName(match[1]), children: [], text: '' };
    if (current === undefined) {
      if (root !== undefined) throw new XmlSyntaxError('more than one root element');
      root = element;
    } else {
      current.children.push(element);
    }
    if (!selfClosing) stack.push(element);
    else if (stack.length === 0) break;
  }
  if (root === undefined || stack.length > 0) throw new XmlSyntaxError('no complete root element');
  return root;
}

function localName(qualified: string): string {
  const colon = qualified.indexOf(':');
  return colon < 0 ? qualified : qualified.slice(colon + 1);
}

export function child(element: XmlElement, name: string): XmlElement | undefined {
  return element.children.find((c) => c.name === name);
}

export function children(element: XmlElement, name: string): XmlElement[] {
  return element.children.filter((c) => c.name === name);
}

/** Serialises nested plain data: arrays repeat the element, undefined is omitted. */
export type XmlValue = string | number | boolean | undefined | XmlNode | XmlValue[];
export interface XmlNode {
  readonly [name: string]: XmlValue;
}

export function toXml(name: string, value: XmlValue): string {
  if (value === undefined) return '';
  if (Array.isArray(value)) return value.map((v) => toXml(name, v)).join('');
  if (typeof value === 'object') {
    return `<${name}>${Object.entries(value)
      .map(([k, v]) => toXml(k, v))
      .join('')}</${name}>`;
  }
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

export const ROUTE53_NS = 'https://route53.amazonaws.com/doc/2013-04-01/';

export function route53Document(root: string, body: XmlNode): string {
  const inner = Object.entries(body)
    .map(([k, v]) => toXml(k, v))
    .join('');
  return `<?xml version="1.0"?>\n<${root} xmlns="${ROUTE53_NS}">${inner}</${root}>`;
}
