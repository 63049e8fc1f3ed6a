/**
 * Real ways to make pages unmovable, for tests, examples and benchmarks (no mocks):
 * an io_uring buffer registration (a long-term pin, as DMA would hold) and a forked child
 * that shares the process's anonymous pages. UFFDIO_MOVE of either gives EBUSY.
 */
import { ErrorCode, MoveGcError, fromNative } from './errors.js';
import { native } from './native.js';
import { checkRange } from './validate.js';

/** A range pinned with IORING_REGISTER_BUFFERS; release() unregisters and closes the ring. */
export class IoUringPin {
  readonly address: number;
  readonly length: number;
  #ring: number;

  private constructor(address: number, length: number, ring: number) {
    this.address = address;
    this.length = length;
    this.#ring = ring;
  }

  static pin(address: number, length: number): IoUringPin {
    checkRange('io_uring pin', address, length);
    try {
      return new IoUringPin(address, length, native.pin.pinRange(address, length));
    } catch (e) {
      throw fromNative(e, 'io_uring pin');
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
      native.pin.unpin(ring);
    } catch (e) {
      throw fromNative(e, 'io_uring unpin');
    }
  }
}

/** A forked child holding a copy-on-write share of every forkable anonymous page. */
export class ForkedChild {
  readonly pid: number;
  #fd: number;

  private constructor(pid: number, fd: number) {
    this.pid = pid;
    this.#fd = fd;
  }

  static spawn(): ForkedChild {
    try {
      const { pid, fd } = native.pin.forkHold();
      return new ForkedChild(pid, fd);
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

