/**
 * The heap's kernel resources, opened together and released together: the heap mapping
 * (to-space, where the mutator's objects live), the from-space mapping (the old copy during a
 * compaction, the builders' buffers and scratch pages), the userfaultfd (move and copy modes)
 * and the shared memory every collector thread reads (shared.ts), with the settings words the
 * heap writes once. A failure part way (ENOMEM, EMFILE, ...) releases what was already opened.
 */
import fs from 'node:fs';
import { Builder } from './build.js';
import { fromExtraBytes, PMD_SCRATCH, PMD_SCRATCH_BYTES } from './builders.js';
import { FaultInstall, Install } from './install.js';
import { HEAP_ALIGN, TypeTable } from './layout.js';
import { PAGE_SIZE } from './native.js';
import { Mapping } from './memory.js';
import { Mode, type ModeName } from './modes.js';
import { mapAlignment, type ResolvedOptions } from './options.js';
import { checkAddressSpace } from './address-space.js';
import { checkCreateMappings } from './map-count.js';
import { collectorRoles } from './threads.js';
import type { Capabilities } from './probe.js';
import { Ctl, Shared } from './shared.js';
import { Userfaultfd } from './uffd.js';

/**
 * The heap's statm descriptor and which file it is (device and inode at its open): the program
 * may close it, and its number then be another file of the program's, which close() must not
 * close. (By inode, not by its /proc link: in a PID namespace whose /proc is the parent's, the
 * link names a pid other than process.pid, a review found.)
 */
interface Statm {
  fd: number;
  dev: number;
  ino: number;
}

function openStatm(): Statm {
  try {
    const fd = fs.openSync('/proc/self/statm', 'r');
    const st = fs.fstatSync(fd);
    return { fd, dev: st.dev, ino: st.ino };
  } catch {
    return { fd: -1, dev: 0, ino: 0 }; // RSS statistics read 0
  }
}

function closeStatm(s: Statm): void {
  if (s.fd < 0) return;
  let st: fs.Stats;
  try {
    st = fs.fstatSync(s.fd);
  } catch {
    return; // not open any more
  }
  if (st.dev === s.dev && st.ino === s.ino) fs.closeSync(s.fd);
}

export class HeapMemory {
  private constructor(
    readonly heap: Mapping,
    readonly from: Mapping,
    readonly uffd: Userfaultfd | null,
    readonly types: TypeTable,
    readonly sh: Shared,
    /** Gives back the address space promised to this heap's collector threads (address-space.ts): once they have started, or failed to. */
    readonly threadsStarted: () => void,
    private readonly statm: Statm,
  ) {}

  static open(opts: ResolvedOptions, caps: Capabilities, mode: ModeName): HeapMemory {
    const fork = opts.dontFork ? (['DONTFORK'] as const) : [];
    const alignment = mapAlignment(opts.capacity);
    const extra = fromExtraBytes(opts.capacity, opts.hugePages && mode === Mode.MOVE);
    const spans = extra > HEAP_ALIGN;
    // Room for both mappings (the second over-mapped by its alignment while it is made) and
    // for the collector's threads, or ENOMEM now: see address-space.ts.
    checkCreateMappings(collectorRoles(mode, opts.marking).length); // nothing mapped yet: see map-count.ts
    const threadsStarted = checkAddressSpace(2 * opts.capacity + extra, alignment, collectorRoles(mode, opts.marking).length, opts.capacity);
    const opened: Array<{ close(): void }> = [{ close: threadsStarted }];
    try {
      // Huge pages (options.hugePages) for the heap only: from-space receives the heap's
      // pages with their mapping's flags (mremap), and its scratch pages stay small pages,
      // but for the huge scratch pages of 2 MiB spans (move mode: Builders.buildPmd).
      const heap = Mapping.anonymous(opts.capacity, { alignment, advise: [...fork, opts.hugePages ? 'HUGEPAGE' : 'NOHUGEPAGE'] });
      opened.push(heap);
      const from = Mapping.anonymous(opts.capacity + extra, { alignment, advise: [...fork, 'NOHUGEPAGE'] });
      opened.push(from);
      if (spans) from.advise('HUGEPAGE', opts.capacity + PMD_SCRATCH.COMPACTOR * PAGE_SIZE, PMD_SCRATCH_BYTES);
      const uffd = mode !== Mode.STW ? Userfaultfd.open({ how: caps.uffd.how ?? 'syscall', features: mode === Mode.MOVE ? ['MOVE'] : [] }) : null;
      if (uffd) opened.push(uffd);
      // For RSS statistics (builders.ts readRss): opened now, so that a cycle needs no new descriptor.
      const statm = openStatm();
      const statmFd = statm.fd;
      if (statmFd >= 0) opened.push({ close: () => fs.closeSync(statmFd) });
      const typesSab = TypeTable.allocate();
      const sh = Shared.allocate({
        heapAddress: heap.address,
        fromAddress: from.address,
        capacity: opts.capacity,
        fromExtraPages: extra / PAGE_SIZE,
        uffdFd: uffd?.fd ?? -1,
        uffdFeatures: uffd?.features ?? 0,
        statmFd,
        types: typesSab,
      });
      const c = sh.ctl;
      Atomics.store(c, Ctl.INSTALL, mode === Mode.MOVE ? Install.MOVE : mode === Mode.COPY ? Install.COPY : Install.DIRECT);
      Atomics.store(c, Ctl.FAULT_INSTALL, opts.faultInstall === 'move' ? FaultInstall.MOVE : FaultInstall.COPY);
      Atomics.store(c, Ctl.BUILDER, opts.builder === 'js' ? Builder.JS : Builder.NATIVE);
      Atomics.store(c, Ctl.MOVE_MIN_RUN, opts.moveMinRun);
      Atomics.store(c, Ctl.HUGE_PAGES, opts.hugePages ? 1 : 0);
      Atomics.store(c, Ctl.PMD_SPANS, spans ? 1 : 0);
      Atomics.store(c, Ctl.INJECT_START_EXIT, opts.inject.startExit ?? 0);
      return new HeapMemory(heap, from, uffd, new TypeTable(typesSab), sh, threadsStarted, statm);
    } catch (e) {
      for (const r of opened.reverse()) r.close();
      throw e;
    }
  }

  /**
   * Closes the userfaultfd, then unmaps both mappings (detaching every view they handed out).
   * Every step is taken even if one fails, and the first failure is thrown after them all (a
   * lifecycle audit: the statm descriptor closed behind the heap's back made close() throw
   * EBADF before the userfaultfd and both mappings, which then stayed for the process's life).
   */
  close(): void {
    let failed: unknown = null;
    const step = (f: () => void): void => {
      try {
        f();
      } catch (e) {
        failed ??= e;
      }
    };
    step(this.threadsStarted);
    step(() => closeStatm(this.statm));
    step(() => this.uffd?.close());
    step(() => this.heap.close());
    step(() => this.from.close());
    if (failed !== null) throw failed;
  }
}
