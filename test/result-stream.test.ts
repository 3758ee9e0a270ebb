import { describe, expect, it, vi } from "vitest";
import { ResultStream, type ResultSource } from "../src/internal/result-stream.js";

/** A producer driven by the test: records the stream's calls. */
function manual(ordered: boolean): {
  stream: ResultStream;
  source: ResultSource & { stops: unknown[]; starts: () => number; resumes: () => number };
} {
  let starts = 0;
  let resumes = 0;
  const source = {
    stops: [] as unknown[],
    starts: () => starts,
    resumes: () => resumes,
    start: () => {
      starts++;
    },
    resume: () => {
      resumes++;
    },
    stop: (reason: unknown) => {
      source.stops.push(reason);
      return Promise.resolve(undefined);
    },
  };
  const stream = new ResultStream(() => ({
    source,
    ordered,
    spread: 4,
    signal: undefined,
    stopsBeforeAbort: false,
  }));
  return { stream, source };
}

describe("ResultStream", () => {
  it("starts its producer on the first next(), not before", async () => {
    const { stream, source } = manual(true);
    expect(source.starts()).toBe(0);
    const first = stream.next();
    expect(source.starts()).toBe(1);
    stream.arrive(0, "a");
    await expect(first).resolves.toEqual({ done: false, value: "a" });
    expect(source.resumes()).toBe(1);
  });

  it("delivers by input index when ordered, as results arrive when not", async () => {
    const ordered = manual(true).stream;
    const read = ordered.next();
    ordered.arrive(2, "c");
    ordered.arrive(1, "b");
    ordered.arrive(0, "a");
    ordered.end(undefined);
    await expect(read).resolves.toEqual({ done: false, value: "a" });
    const rest: unknown[] = [];
    for await (const value of ordered) rest.push(value);
    expect(rest).toEqual(["b", "c"]);
    expect(ordered.read).toBe(3);

    const unordered = manual(false).stream;
    const first = unordered.next();
    unordered.arrive(2, "c");
    unordered.arrive(0, "a");
    unordered.end(undefined);
    await expect(first).resolves.toEqual({ done: false, value: "c" });
    await expect(unordered.next()).resolves.toEqual({ done: false, value: "a" });
    await expect(unordered.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it("ends with the failure after the results ready before it", async () => {
    const { stream } = manual(true);
    const read = stream.next();
    stream.arrive(0, "a");
    const failure = new Error("boom");
    stream.end({ error: failure });
    await expect(read).resolves.toEqual({ done: false, value: "a" });
    await expect(stream.next()).rejects.toBe(failure);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it("return() during a pending next() ends the read and stops the producer", async () => {
    const { stream, source } = manual(true);
    const pending = stream.next();
    await expect(stream.return()).resolves.toEqual({ done: true, value: undefined });
    await expect(pending).resolves.toEqual({ done: true, value: undefined });
    expect(source.stops).toHaveLength(1);
    expect((source.stops[0] as DOMException).name).toBe("AbortError");
    stream.arrive(0, "late");
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it("throw() stops the producer and rejects with the error given", async () => {
    const { stream, source } = manual(false);
    const pending = stream.next();
    const error = new Error("consumer failed");
    await expect(stream.throw(error)).rejects.toBe(error);
    await expect(pending).resolves.toEqual({ done: true, value: undefined });
    expect(source.stops).toHaveLength(1);
  });

  it("rejects the first next() when the producer cannot be made", async () => {
    const problem = new TypeError("bad option");
    const stream = new ResultStream(() => {
      throw problem;
    });
    await expect(stream.next()).rejects.toBe(problem);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it("rejects with the signal's reason once it has aborted, and stops the producer", async () => {
    const controller = new AbortController();
    const source = {
      start: vi.fn(),
      resume: vi.fn(),
      stop: vi.fn(() => Promise.resolve(undefined)),
    };
    const stream = new ResultStream(() => ({
      source,
      ordered: true,
      spread: 4,
      signal: controller.signal,
      stopsBeforeAbort: false,
    }));
    const first = stream.next();
    stream.arrive(0, "a");
    await expect(first).resolves.toEqual({ done: false, value: "a" });
    stream.arrive(1, "b");
    controller.abort(new Error("stop"));
    await expect(stream.next()).rejects.toThrow("stop");
    expect(source.stop).toHaveBeenCalledWith(controller.signal.reason);
  });

  it("with stopsBeforeAbort, rejects for the signal only once the producer's stop settled", async () => {
    const controller = new AbortController();
    let finishStop: () => void = () => undefined;
    const source = {
      start: vi.fn(),
      resume: vi.fn(),
      // A stop that fails is not the reader's concern: it still gets the signal's reason.
      stop: vi.fn(
        () =>
          new Promise<undefined>((_resolve, reject) => {
            finishStop = () => {
              reject(new Error("the close failed"));
            };
          }),
      ),
    };
    const stream = new ResultStream(() => ({
      source,
      ordered: false,
      spread: 4,
      signal: controller.signal,
      stopsBeforeAbort: true,
    }));
    const first = stream.next();
    stream.arrive(0, "a");
    await expect(first).resolves.toEqual({ done: false, value: "a" });
    controller.abort(new Error("stop"));
    let settled = false;
    const read = stream.next().finally(() => {
      settled = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    expect(source.stop).toHaveBeenCalledWith(controller.signal.reason);
    finishStop();
    await expect(read).rejects.toBe(controller.signal.reason);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
  });
});
