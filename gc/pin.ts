/**
 * Real ways to make pages unmovable, for tests, examples and benchmarks (no mocks):
 * an io_uring buffer registration (a long-term pin, as DMA would hold) and a forked child
 * that shares the process's anonymous pages. UFFDIO_MOVE of either gives EBUSY.
 */
import { ErrorCode, MoveGcError, fromNative } from './errors.js';
import { native } from './native.js';
import { checkFlags, checkInt, checkRange, readOptions } from './validate.js';

export interface IoUringPinOptions {
  /** Also map the ring's queues so that {@link IoUringPin.readFixed} can submit reads into the range. */
  io?: boolean;
}

/** IoUringPin.readFixed's bound on one read (ms), by default and at most. */
export const READ_TIMEOUT_MS = 30_000;
export const MAX_READ_TIMEOUT_MS = 3_600_000;

// Constructors are private in TypeScript only: these tokens keep JavaScript callers from
// making a pin or child around a descriptor of their choosing (release() would close it).
const MAKE_PIN = Symbol('IoUringPin');
const MAKE_CHILD = Symbol('ForkedChild');

/** A range pinned with IORING_REGISTER_BUFFERS; release() unregisters and closes the ring. */
export class IoUringPin {
  readonly address: number;
  readonly length: number;
  /** True if the ring can submit I/O ({@link IoUringPin.readFixed}). */
  readonly io: boolean;
  #ring: number;

  private constructor(make: symbol, address: number, length: number, ring: number, io: boolean) {
    if (make !== MAKE_PIN) throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, 'an IoUringPin is made by IoUringPin.pin()');
    this.address = address;
    this.length = length;
    this.#ring = ring;
    this.io = io;
    Object.freeze(this);
  }

  static pin(address: number, length: number, opts: IoUringPinOptions = {}): IoUringPin {
    checkRange('io_uring pin', address, length);
    const o = readOptions('IoUringPin.pin options', opts, ['io']);
    checkFlags('IoUringPin.pin options', o, ['io']);
    try {
      if (o.io === true) return new IoUringPin(MAKE_PIN, address, length, native.uring.setup(address, length), true);
      return new IoUringPin(MAKE_PIN, address, length, native.pin.pinRange(address, length), false);
    } catch (e) {
      throw fromNative(e, 'io_uring pin');
    }
  }

  /**
   * Reads `length` bytes of file `fd` at `offset` into the registered range at `bufferOffset`
   * with IORING_OP_READ_FIXED; blocks until the completion and returns the bytes read.
   * The kernel writes into the pinned physical pages, wherever they are mapped now. Bounded:
   * a read with no completion within `timeoutMs` (a pipe nobody writes to) is cancelled by the
   * kernel (a linked IORING_OP_LINK_TIMEOUT) and throws ETIME.
   */
  readFixed(fd: number, offset: number, length: number, bufferOffset = 0, timeoutMs = READ_TIMEOUT_MS): number {
    if (!this.io) throw new MoveGcError(ErrorCode.UNSUPPORTED, 'readFixed needs a pin made with { io: true }');
    if (this.#ring < 0) throw new MoveGcError(ErrorCode.CLOSED, 'io_uring pin released');
    checkInt('fd', fd, 0, 0x7fffffff);
    checkInt('offset', offset);
    checkInt('length', length, 1, 0x7fffffff);
    checkInt('bufferOffset', bufferOffset, 0, this.length);
    checkInt('timeoutMs', timeoutMs, 1, MAX_READ_TIMEOUT_MS);
    if (bufferOffset + length > this.length)
      throw new MoveGcError(ErrorCode.OUT_OF_RANGE, `read of ${length} bytes at buffer offset ${bufferOffset} overruns the ${this.length}-byte registered range`);
    try {
      return native.uring.readFixed(this.#ring, fd, offset, length, this.address + bufferOffset, timeoutMs);
    } catch (e) {
      throw fromNative(e, 'io_uring read');
    }
  }

  get released(): boolean {
    return this.#ring < 0;
  }

  release(): void {
    if (this.#ring < 0) return;
    const ring = this.#ring;
    this.#ring = -1;
    try {
      if (this.io) native.uring.close(ring);
      else native.pin.unpin(ring);
    } catch (e) {
      const err = fromNative(e, 'io_uring unpin');
      // Refused while another thread's read waits on the ring: nothing was released, and a
      // later release() must still do it (a review: the pin read as released and leaked).
      if (err.code === 'EBUSY') this.#ring = ring;
      throw err;
    }
  }
}

/** A forked child holding a copy-on-write share of every forkable anonymous page. */
export class ForkedChild {
  readonly pid: number;
  #fd: number;

  private constructor(make: symbol, pid: number, fd: number) {
    if (make !== MAKE_CHILD) throw new MoveGcError(ErrorCode.INVALID_ARG_TYPE, 'a ForkedChild is made by ForkedChild.spawn()');
    this.pid = pid;
    this.#fd = fd;
    Object.freeze(this);
  }

  static spawn(): ForkedChild {
    try {
      const { pid, fd } = native.pin.forkHold();
      return new ForkedChild(MAKE_CHILD, pid, fd);
    } catch (e) {
      throw fromNative(e, 'fork');
    }
  }

  /** Lets the child exit and reaps it. */
  release(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    native.pin.release(this.pid, fd);
  }
}

