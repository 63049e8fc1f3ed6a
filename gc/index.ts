/** movegc: a userspace compacting GC heap that relocates pages with UFFDIO_MOVE. */
export * from './errors.js';
export { PAGE_SIZE } from './native.js';
export { Mapping, Advice, HUGE_PAGE_SIZE, MAX_VIEW_BYTES, remapDontUnmap, viewOf, madvise, type AdviceName, type MapOptions } from './memory.js';
export { Userfaultfd, Feature, Ioctl, OpenHow, featureNames, ioctlNames, type FeatureName, type IoctlName, type OpenHowName, type MoveOptions } from './uffd.js';
export { IoUringPin, ForkedChild } from './pin.js';
export { probe, type Capabilities, type Capability, type Hideable } from './probe.js';
export { Heap, HeapType, Root, Pin, MAX_CAPACITY, type Ref, type HeapOptions, type TypeSpec, type InjectOptions } from './heap.js';
export { Mode, MODES, chooseMode, type ModeName } from './modes.js';
export { median, summarize, type CycleStats, type LatencySummary } from './stats.js';
export { type VerifyResult } from './verify.js';
export { cliLogger, silentLogger, type Logger } from './log.js';
export { PauseOrder, type PauseOrderName } from './pause.js';
export { formatTrace, traceFromEnv, roundMs, rounded } from './trace.js';
