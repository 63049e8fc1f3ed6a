/** movegc: a userspace compacting GC heap that relocates pages with UFFDIO_MOVE. */
export * from './errors.js';
export { PAGE_SIZE } from './native.js';
export { Mapping, Advice, HUGE_PAGE_SIZE, MAX_VIEW_BYTES, remapDontUnmap, viewOf, madvise, type AdviceName, type MapOptions } from './memory.js';
export { Userfaultfd, Feature, Ioctl, OpenHow, featureNames, ioctlNames, type FeatureName, type IoctlName, type OpenHowName, type MoveOptions, type WakeOptions, type RegisterMode, type UffdEvent } from './uffd.js';
export { IoUringPin, ForkedChild } from './pin.js';
export { probe, parseKernelRelease, moveFixesIn, HIDEABLE, type Capabilities, type Capability, type Hideable, type KernelVersion } from './probe.js';
export { Heap, HeapType, Root, Pin, type Ref, type TypeSpec, type Progress, type Census } from './heap.js';
export { MAX_CAPACITY, Marking, FaultInstallPolicy, FaultPath, UnbuiltReadPolicy, CollectorPolicy, type CollectorPolicyName, type HeapOptions, type InjectOptions, type MarkingName, type FaultInstallName, type FaultPathName, type UnbuiltReadsName } from './options.js';
export { Mode, MODES, chooseMode, type ModeName, type ModeChoice, type ModeChoiceOptions } from './modes.js';
export { median, summarize, type CycleStats, type LatencySummary } from './stats.js';
export { type VerifyResult } from './verify.js';
export { cliLogger, silentLogger, type HeapLogger, type Logger } from './log.js';
export { PauseOrder, type PauseOrderName } from './pause.js';
export { formatTrace, traceFromEnv, roundMs, rounded } from './trace.js';
