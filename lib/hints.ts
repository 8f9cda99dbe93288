/**
 * Hinted handoff: writes held for a node that was down when they were made.
 *
 * A hint names a target node and a key; the value is not copied, because
 * the holder has the record in its own storage and sends whatever version it
 * holds then (last-write-wins makes that safe). Hints are bounded in number
 * and age; a hint dropped for either reason is logged, and anti-entropy or
 * recovery repairs what it would have carried. Hints live in memory: a holder
 * that crashes loses them, with the same repair.
 */
import { compareVersions, type Version } from "./record.ts";
import type { Logger } from "./log.ts";

/** The held version and when the hint was made, in one object: a node may hold a million hints. */
interface Hint extends Version {
  createdMs: number;
}

/** Options of {@link HintStore}. */
export interface HintStoreOptions {
  limit: number;
  maxAgeMs: number;
  log: Logger;
  clock?: () => number;
}

/** The hints this node holds, by target node. */
export class HintStore {
  readonly #byTarget = new Map<string, Map<string, Hint>>();
  #size = 0;
  #dropped = 0;
  #delivered = 0;
  readonly #clock: () => number;

  constructor(private readonly options: HintStoreOptions) {
    this.#clock = options.clock ?? Date.now;
  }

  /** Remembers that `target` must be given this key; false when full. */
  add(target: string, key: string, version: Version): boolean {
    let hints = this.#byTarget.get(target);
    if (!hints) this.#byTarget.set(target, hints = new Map());
    if (!hints.has(key)) {
      if (this.#size >= this.options.limit) {
        this.#noteDrop(`hint store full (${this.options.limit})`, target);
        return false;
      }
      this.#size++;
    }
    // Only the version is kept: a record would pin its value in memory.
    hints.set(key, {
      timestamp: version.timestamp,
      versionNode: version.versionNode,
      createdMs: this.#clock(),
    });
    return true;
  }

  /** Whether any target still waits for this key. */
  isHinted(key: string): boolean {
    for (const hints of this.#byTarget.values()) if (hints.has(key)) return true;
    return false;
  }

  /** Hints held for a target. */
  pendingFor(target: string): number {
    return this.#byTarget.get(target)?.size ?? 0;
  }

  /** All hints held. */
  size(): number {
    return this.#size;
  }

  /** Up to `limit` keys to hand to a target, oldest first; expired ones are dropped. */
  take(target: string, limit: number): string[] {
    const hints = this.#byTarget.get(target);
    if (!hints) return [];
    const oldest = this.#clock() - this.options.maxAgeMs;
    const keys: string[] = [];
    for (const [key, h] of hints) {
      if (h.createdMs < oldest) {
        hints.delete(key);
        this.#size--;
        this.#noteDrop(`hint older than ${this.options.maxAgeMs} ms`, target);
        continue;
      }
      keys.push(key);
      if (keys.length >= limit) break;
    }
    return keys;
  }

  /**
   * Forgets hints once delivered, unless a newer version arrived meanwhile.
   * A `version` left undefined means the record is gone: the hint is moot.
   */
  delivered(target: string, sent: readonly { key: string; version?: Version }[]): void {
    const hints = this.#byTarget.get(target);
    if (!hints) return;
    for (const { key, version } of sent) {
      const h = hints.get(key);
      if (h && (!version || compareVersions(h, version) <= 0)) {
        hints.delete(key);
        this.#size--;
        this.#delivered++;
      }
    }
    if (hints.size === 0) this.#byTarget.delete(target);
  }

  /** Hints delivered (and forgotten) since start. */
  deliveredTotal(): number {
    return this.#delivered;
  }

  /**
   * Forgets every hint for a target that left the cluster: its ranges were
   * copied to their new holders, so nothing is owed to it any more.
   */
  forget(target: string): number {
    const n = this.pendingFor(target);
    this.#byTarget.delete(target);
    this.#size -= n;
    return n;
  }

  /** Targets that have hints waiting. */
  targets(): string[] {
    // A refused add or an expiry can leave a target with an empty map.
    return [...this.#byTarget].filter(([, hints]) => hints.size > 0).map(([target]) => target);
  }

  #noteDrop(reason: string, target: string): void {
    this.#dropped++;
    // One line per thousand drops: a flood of identical lines helps no one.
    if (this.#dropped % 1000 === 1) {
      this.options.log.warn("dropping hints; anti-entropy will repair", {
        target,
        reason,
        dropped_total: this.#dropped,
      });
    }
  }
}
