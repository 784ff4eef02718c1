/**
 * Read-only folders of files by relative path, for code that runs in browsers as well as in Node: a
 * folder served over HTTP (`urlSource`), files the user picked (`filesSource`, e.g. from
 * `<input webkitdirectory>` or a drop), or bytes in memory (`memorySource`). The model folder, the
 * grid build and the data folder (filters, IGM and nebular tables) of the web page are FileSources.
 * Paths are '/'-separated and relative to the source's root. No node: imports.
 */

export class FileSourceError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'FileSourceError';
  }
}

export interface FileSource {
  /** The source for messages: a URL or a folder name. */
  readonly name: string;
  /** Bytes of `rel`; throws FileSourceError naming it when it is missing. */
  bytes(rel: string): Promise<Uint8Array>;
  /** UTF-8 text of `rel`. */
  text(rel: string): Promise<string>;
  /** Whether `rel` is there. */
  has(rel: string): Promise<boolean>;
  /** Where `rel` is, for messages. */
  where(rel: string): string;
}

const clean = (rel: string) => rel.replace(/^\.?\/+/, '');

/** Files under a base URL (a trailing '/' is added); relative bases resolve against the page. */
export function urlSource(base: string, fetchFn: typeof fetch = (...a) => fetch(...a)): FileSource {
  const root = base.endsWith('/') ? base : base + '/';
  const where = (rel: string) => root + clean(rel);
  const get = async (rel: string): Promise<Response> => {
    let r: Response;
    try {
      r = await fetchFn(where(rel));
    } catch (e) {
      throw new FileSourceError(where(rel), `cannot fetch (${(e as Error).message})`);
    }
    if (!r.ok) throw new FileSourceError(where(rel), `HTTP ${r.status} ${r.statusText}`.trim());
    return r;
  };
  return {
    name: root,
    where,
    bytes: async (rel) => new Uint8Array(await (await get(rel)).arrayBuffer()),
    text: async (rel) => (await get(rel)).text(),
    async has(rel) {
      try {
        const r = await fetchFn(where(rel), { method: 'HEAD' });
        return r.ok;
      } catch {
        return false;
      }
    },
  };
}

/** What filesSource needs of a File (browser File objects have it). */
export interface PickedFile {
  name: string;
  /** Path inside the picked folder, first component = the folder (`<input webkitdirectory>`); '' for single files. */
  webkitRelativePath?: string;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/**
 * Files picked by the user. With `<input webkitdirectory>` every file's webkitRelativePath starts
 * with the picked folder's name, which is dropped, so paths are relative to the picked folder;
 * loose files are found by their names.
 */
export function filesSource(files: Iterable<PickedFile>, name?: string): FileSource {
  const list = [...files];
  const rels = list.map((f) => (f.webkitRelativePath ? f.webkitRelativePath : f.name));
  const top = rels.every((r) => r.includes('/')) ? rels[0]?.split('/')[0] : undefined;
  const strip = top !== undefined && rels.every((r) => r.startsWith(top + '/'));
  const byPath = new Map<string, PickedFile>();
  list.forEach((f, i) => byPath.set(strip ? rels[i].slice(top!.length + 1) : rels[i], f));
  const label = name ?? (strip ? top! : `${list.length} picked file${list.length === 1 ? '' : 's'}`);
  const where = (rel: string) => `${label}/${clean(rel)}`;
  const find = (rel: string) => {
    const f = byPath.get(clean(rel));
    if (!f) throw new FileSourceError(where(rel), `not among the picked files (${[...byPath.keys()].slice(0, 8).join(', ')}${byPath.size > 8 ? ', ...' : ''})`);
    return f;
  };
  return {
    name: label,
    where,
    bytes: async (rel) => new Uint8Array(await find(rel).arrayBuffer()),
    text: async (rel) => new TextDecoder().decode(await find(rel).arrayBuffer()),
    has: async (rel) => byPath.has(clean(rel)),
  };
}

/** Files held in memory (tests, or text typed into a page). */
export function memorySource(name: string, files: Record<string, Uint8Array | string>): FileSource {
  const where = (rel: string) => `${name}/${clean(rel)}`;
  const find = (rel: string) => {
    const f = files[clean(rel)];
    if (f === undefined) throw new FileSourceError(where(rel), 'no such file');
    return f;
  };
  return {
    name,
    where,
    bytes: async (rel) => {
      const f = find(rel);
      return typeof f === 'string' ? new TextEncoder().encode(f) : f;
    },
    text: async (rel) => {
      const f = find(rel);
      return typeof f === 'string' ? f : new TextDecoder().decode(f);
    },
    has: async (rel) => files[clean(rel)] !== undefined,
  };
}
