/**
 * The memory engine's per-slot numbers (a record's timestamp, version node
 * and state, a key's hash, where a key or value lives), in pages of typed
 * arrays. Growing adds a page and copies nothing: contiguous arrays grown by
 * a quarter copied about 30 MB across the engine's eight of them in one
 * write at a million slots (25-39 ms measured alone, several times that on a
 * busy machine), and the node answered nothing meanwhile. Pages also spare
 * the moment old and new copies are both held. The first page starts small
 * and doubles up to a full page, so a small store stays small.
 */

type Page = Float64Array | Int32Array | Uint32Array | Uint8Array;

/** Slots per full page (64 Ki): a page of 8-byte numbers is 512 KiB. */
const PAGE_BITS = 16;
const PAGE_SLOTS = 1 << PAGE_BITS;
const PAGE_MASK = PAGE_SLOTS - 1;
const FIRST_PAGE_SLOTS = 1024;

/** Numbers by slot; slots below {@link capacity} hold `fill` until set. */
export class SlotColumn {
  readonly #make: new (n: number) => Page;
  readonly #fill: number;
  readonly #pages: Page[];

  /** `make`: the typed array constructor of every page; `fill`: what new slots hold. */
  constructor(make: new (n: number) => Page, fill = 0) {
    this.#make = make;
    this.#fill = fill;
    this.#pages = [this.#page(FIRST_PAGE_SLOTS)];
  }

  /** Slots that may be read and written. */
  get capacity(): number {
    const last = this.#pages.length - 1;
    return last * PAGE_SLOTS + this.#pages[last].length;
  }

  /** The slot's number; `slot` must be below {@link capacity}. */
  get(slot: number): number {
    return this.#pages[slot >>> PAGE_BITS][slot & PAGE_MASK];
  }

  set(slot: number, value: number): void {
    this.#pages[slot >>> PAGE_BITS][slot & PAGE_MASK] = value;
  }

  /** Makes room for every slot below `min`. */
  ensure(min: number): void {
    const pages = this.#pages;
    if (pages.length === 1 && pages[0].length < PAGE_SLOTS && min > pages[0].length) {
      // Only the small first page is ever copied (at most one page's bytes).
      let size = pages[0].length;
      while (size < min && size < PAGE_SLOTS) size *= 2;
      const first = this.#page(size);
      first.set(pages[0] as never);
      pages[0] = first;
    }
    while (this.capacity < min) pages.push(this.#page(PAGE_SLOTS));
  }

  #page(size: number): Page {
    const page = new this.#make(size);
    if (this.#fill !== 0) page.fill(this.#fill);
    return page;
  }
}
