/**
 * Writes of one field to a page nobody has claimed, made in from-space: the accessors' write
 * path while a cycle compacts (options.unbuiltWrites 'from-space', with reads from from-space).
 * The twin of unbuilt-reads.ts: a store needs no page built either, if the page's builder,
 * whoever it is, reads the stored word from where the object still is. ART has no such path
 * (its compiled code writes the heap directly, and only a fault can stop it).
 *
 * The mutator claims the page for the store, through the same state word every builder claims
 * with (claim.ts), and gives the claim back at once: no builder reads the page's sources
 * meanwhile, so none can miss the word, and none installs the page, so its sources are
 * neither recycled nor released under the store (compact.ts consumedLimit). Any builder that
 * claims it afterwards reads the word stored. A page someone else holds, or one reclaimed from
 * us meanwhile (a mutator that gave up self-service: Builders.isStale), takes the usual path:
 * the page is installed and the store made in to-space. A builder that meets the claim passes
 * over the page, as it does any other builder's, for the microseconds of the store (the
 * compactor's last sweep, the fault server's next look or the awaited end builds it later).
 *
 * References are stored as the to-space words they are, tagged FORWARDED (forward.ts): a
 * builder would otherwise forward them a second time. Every reader of from-space slots (both
 * page builders, the read path) untags them. Not here: WHOLE pages (installed unbuilt by a
 * MOVE of their source), byte ranges (writeBytes builds its pages), and a page the mutator has
 * been through the fault path for (SelfService.seen: installed whatever its state word says).
 */
import { claim, unclaim } from './claim.js';
import { FORWARDED } from './forward.js';
import { PAGE_SHIFT_WORDS } from './layout.js';
import { Ctl, Hist, Owner, PageKind, PagePhase, SampledClock, sleepSync, type Shared } from './shared.js';
import type { SelfService } from './selfservice.js';
import { BUILD, type UnbuiltReads } from './unbuilt-reads.js';

export class UnbuiltWrites {
  readonly #sh: Shared;
  readonly #reads: UnbuiltReads;
  readonly #faults: SelfService;
  readonly #from: Uint32Array;
  readonly #fromBytes: DataView;
  readonly #state: Int32Array;
  /** inject.writeHoldMs was served this cycle (cleared by begin()). */
  #held = false;
  #t0 = 0;
  readonly #clock = new SampledClock();

  constructor(sh: Shared, reads: UnbuiltReads, faults: SelfService, from: Uint32Array) {
    this.#sh = sh;
    this.#reads = reads;
    this.#faults = faults;
    this.#from = from;
    this.#fromBytes = new DataView(from.buffer, from.byteOffset, from.byteLength);
    this.#state = sh.pageState;
  }

  /** At the compaction pause. */
  begin(): void {
    this.#held = false;
    this.#clock.reset();
  }

  /** setRef of slot i of the object at to-space word w to to-space word v (0: null): true if done here. */
  ref(w: number, i: number, v: number): boolean {
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0) return false;
    const q = (w + 1 + Math.floor(i / 2)) >>> PAGE_SHIFT_WORDS; // the slot's page
    if (q >= this.#state.length || !this.#open(q)) return false;
    const qh = w >>> PAGE_SHIFT_WORDS;
    const h = qh === q ? 0 : this.#reads.page(qh);
    if (h < 0) return false;
    this.#t0 = this.#clock.start();
    const o = this.#reads.sourceOf(w);
    if (o === BUILD) return false;
    // The header where it is. Read from from-space it stands while its page is not installed
    // (on the slot's page: the claim below proves that).
    if (i >= this.#reads.refsOf(w, o, h) || (h === 0 && qh !== q && this.#reads.page(qh) !== 0)) return false;
    if (!this.#claim(q)) return false;
    this.#from[o * 2 + 2 + i] = v === 0 ? 0 : v + FORWARDED;
    return this.#release(q);
  }

  /**
   * setU8 / setU32 / setF64 (size 1, 4, 8) of the object at to-space word w (the value
   * checked): true if done here. A misaligned offset takes the usual path, which says so.
   */
  raw(w: number, offset: number, size: 1 | 4 | 8, v: number): boolean {
    if (typeof offset !== 'number' || (offset & (size - 1)) !== 0) return false;
    const f = this.#locate(w, offset, size);
    if (f === BUILD) return false;
    if (size === 1) this.#fromBytes.setUint8(f, v);
    else if (size === 4) this.#fromBytes.setUint32(f, v, true);
    else this.#fromBytes.setFloat64(f, v, true);
    return this.#release(this.#reads.dataPage);
  }

  /** From-space byte index of a raw field on one unclaimed page, its header still readable, the page now claimed; or BUILD. */
  #locate(w: number, offset: number, size: number): number {
    this.#t0 = this.#clock.start();
    const f = this.#reads.locate(w, offset, size);
    if (f === BUILD || !this.#open(this.#reads.dataPage) || !this.#reads.headerStill() || !this.#claim(this.#reads.dataPage)) return BUILD;
    return f;
  }

  /** Page q may take a store in from-space: unclaimed, not WHOLE, not one the mutator saw installed. */
  #open(q: number): boolean {
    return Atomics.load(this.#state, q) === PagePhase.UNPROCESSED && this.#sh.pageKind[q] !== PageKind.WHOLE && !this.#faults.seen(q);
  }

  /** Claims page q for a store (then the injected hold, if any): false if another thread has it. */
  #claim(q: number): boolean {
    if (!claim(this.#sh, q, Owner.MUTATOR)) return false;
    this.#hold();
    return true;
  }

  /** Gives page q back after its store: false (the usual path) if the claim was not ours to the end. */
  #release(q: number): boolean {
    const sh = this.#sh;
    if (!unclaim(sh, q, Owner.MUTATOR)) return false;
    sh.count(Ctl.UNBUILT_WRITES);
    this.#clock.done(sh, Hist.UNBUILT_READ_US, this.#t0);
    return true;
  }

  /** inject.writeHoldMs: once a cycle, between the claim and the store. */
  #hold(): void {
    if (this.#held) return;
    this.#held = true;
    const ms = Atomics.load(this.#sh.ctl, Ctl.INJECT_WRITE_HOLD_MS);
    if (ms > 0) sleepSync(ms);
  }
}
