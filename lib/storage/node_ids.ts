/**
 * Version node ids interned as small numbers for the memory engine: a cluster
 * has a handful of nodes, so a record keeps a 4-byte index instead of a
 * string pointer. Ids are reference counted and their numbers reused once no
 * record holds them, so arbitrary ids (from clients' own timestamps) cannot
 * grow the table past the records held.
 */
import { Buffer } from "node:buffer";

export class NodeIds {
  readonly #index = new Map<string, number>();
  readonly #ids: string[] = [];
  readonly #refs: number[] = [];
  readonly #storedLengths: number[] = [];
  readonly #free: number[] = [];

  /** The id's number, counting one more holder. */
  acquire(id: string): number {
    let n = this.#index.get(id);
    if (n === undefined) {
      n = this.#free.pop() ?? this.#ids.length;
      this.#index.set(id, n);
      this.#ids[n] = id;
      this.#refs[n] = 0;
      this.#storedLengths[n] = storedLength(id);
    }
    this.#refs[n]++;
    return n;
  }

  /** One holder fewer; the number is reused once none is left. */
  release(n: number): void {
    if (--this.#refs[n] > 0) return;
    this.#index.delete(this.#ids[n]);
    this.#ids[n] = "";
    this.#free.push(n);
  }

  id(n: number): string {
    return this.#ids[n];
  }

  /** Bytes the id counts for in `bytesHeld`. */
  storedLength(n: number): number {
    return this.#storedLengths[n];
  }

  /** Ids currently held (for tests). */
  size(): number {
    return this.#index.size;
  }
}

/** ASCII ids count a byte per character, others a marker byte and their UTF-8 bytes (as before). */
function storedLength(id: string): number {
  for (let i = 0; i < id.length; i++) {
    if (id.charCodeAt(i) > 0x7f) return 1 + Buffer.byteLength(id, "utf8");
  }
  return id.length;
}
