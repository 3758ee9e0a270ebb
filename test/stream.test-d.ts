import { describe, expectTypeOf, it } from "vitest";
import { Pipeline, Stage } from "../src/index.js";
import type { AdaptiveConcurrency, MapOptions, Progress, StreamOptions } from "../src/index.js";

const parse = new Stage("parse", (line: string) => Number.parseInt(line, 10));
const format = new Stage("format", async (value: number) => `=${String(value)}`);
const pipeline = new Pipeline([parse, format]);

async function* lines(): AsyncGenerator<string> {
  yield "1";
}
function* syncLines(): Generator<string> {
  yield "1";
}
async function* numbers(): AsyncGenerator<number> {
  yield 1;
}

describe("stream yields O", () => {
  it("returns an async generator of the last stage's output", () => {
    expectTypeOf(pipeline.stream(["1"])).toEqualTypeOf<AsyncGenerator<string, void, undefined>>();
    expectTypeOf(pipeline.stream(["1"], 2)).toEqualTypeOf<
      AsyncGenerator<string, void, undefined>
    >();
    expectTypeOf(
      pipeline.stream(["1"], { concurrency: 2, ordered: false, buffer: 0 }),
    ).toEqualTypeOf<AsyncGenerator<string, void, undefined>>();
    expectTypeOf(pipeline.stream(["1"], 4, { settled: false })).toEqualTypeOf<
      AsyncGenerator<string, void, undefined>
    >();
    expectTypeOf(pipeline.stream(["1"], undefined, { settled: undefined })).toEqualTypeOf<
      AsyncGenerator<string, void, undefined>
    >();
  });

  it("is an AsyncIterable of O for for-await", async () => {
    expectTypeOf(pipeline.stream(["1"])).toExtend<AsyncIterable<string>>();
    for await (const output of pipeline.stream(["1"])) {
      expectTypeOf(output).toEqualTypeOf<string>();
    }
  });

  it("accepts any Iterable or AsyncIterable of the input type", () => {
    expectTypeOf(pipeline.stream(lines())).toEqualTypeOf<AsyncGenerator<string, void, undefined>>();
    expectTypeOf(pipeline.stream(syncLines(), 3)).toEqualTypeOf<
      AsyncGenerator<string, void, undefined>
    >();
    expectTypeOf(pipeline.stream(new Set(["1"]))).toEqualTypeOf<
      AsyncGenerator<string, void, undefined>
    >();
    // @ts-expect-error the items must be of the pipeline's input type
    pipeline.stream([1, 2]);
    // @ts-expect-error an async iterable of the wrong type too
    pipeline.stream(numbers());
    // @ts-expect-error items are required
    pipeline.stream();
  });
});

describe("stream with { settled: true } yields PromiseSettledResult<O>", () => {
  it("in every call form", () => {
    expectTypeOf(pipeline.stream(["1"], { settled: true })).toEqualTypeOf<
      AsyncGenerator<PromiseSettledResult<string>, void, undefined>
    >();
    expectTypeOf(pipeline.stream(["1"], 2, { settled: true, ordered: false })).toEqualTypeOf<
      AsyncGenerator<PromiseSettledResult<string>, void, undefined>
    >();
    expectTypeOf(pipeline.stream(lines(), undefined, { settled: true })).toEqualTypeOf<
      AsyncGenerator<PromiseSettledResult<string>, void, undefined>
    >();
  });

  it("narrows each entry on status", async () => {
    for await (const entry of pipeline.stream(["1"], { settled: true })) {
      if (entry.status === "fulfilled") expectTypeOf(entry.value).toEqualTypeOf<string>();
      else expectTypeOf(entry).toEqualTypeOf<PromiseRejectedResult>();
    }
  });
});

describe("stream options are typed", () => {
  it("StreamOptions extends MapOptions with buffer, ordered and settled", () => {
    expectTypeOf<StreamOptions>().toExtend<MapOptions>();
    expectTypeOf<StreamOptions["buffer"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<StreamOptions["ordered"]>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<StreamOptions["settled"]>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<StreamOptions["concurrency"]>().toEqualTypeOf<
      number | AdaptiveConcurrency | undefined
    >();
    expectTypeOf<StreamOptions["signal"]>().toEqualTypeOf<AbortSignal | undefined>();
    expectTypeOf<StreamOptions["onProgress"]>().toEqualTypeOf<
      ((progress: Progress) => unknown) | undefined
    >();
  });

  it("rejects options of the wrong type", () => {
    // @ts-expect-error ordered is a boolean
    pipeline.stream(["1"], { ordered: "yes" });
    // @ts-expect-error settled is a boolean
    pipeline.stream(["1"], 2, { settled: 1 });
    // @ts-expect-error buffer is a number
    pipeline.stream(["1"], { buffer: "3" });
    // @ts-expect-error concurrency is a number
    pipeline.stream(["1"], "4");
    // @ts-expect-error signal is an AbortSignal
    pipeline.stream(["1"], { signal: true });
    // @ts-expect-error onProgress is a function
    pipeline.stream(["1"], { onProgress: 1 });
    // @ts-expect-error an unknown option
    pipeline.stream(["1"], { bufer: 2 });
  });

  it("gives onProgress a Progress with read-only fields", () => {
    pipeline.stream(["1"], {
      onProgress: (progress) => {
        expectTypeOf(progress).toEqualTypeOf<Progress>();
        expectTypeOf(progress.done).toEqualTypeOf<number>();
        expectTypeOf(progress.failed).toEqualTypeOf<number>();
        expectTypeOf(progress.inFlight).toEqualTypeOf<number>();
        expectTypeOf(progress.total).toEqualTypeOf<number | undefined>();
        // @ts-expect-error the progress is read-only
        progress.done = 1;
      },
    });
    // An async callback is accepted too.
    pipeline.stream(["1"], 2, { settled: true, onProgress: async () => undefined });
  });

  it("types onProgress on map and mapSettled", () => {
    void pipeline.map(["1"], {
      onProgress: (progress) => {
        expectTypeOf(progress).toEqualTypeOf<Progress>();
      },
    });
    void pipeline.mapSettled(["1"], 2, {
      onProgress: (progress) => {
        expectTypeOf(progress).toEqualTypeOf<Progress>();
      },
    });
    // @ts-expect-error onProgress is a function
    void pipeline.map(["1"], { onProgress: "log" });
  });

  // Regression: an options object typed with the exported StreamOptions, or a `settled`
  // computed at run time, used to match no overload.
  it("accepts a StreamOptions-typed object or a boolean `settled`, yielding either shape", () => {
    const options: StreamOptions = { concurrency: 2 };
    const settled = Math.random() > 0.5;
    expectTypeOf(pipeline.stream(["1"], options)).toEqualTypeOf<
      AsyncGenerator<string | PromiseSettledResult<string>, void, undefined>
    >();
    expectTypeOf(pipeline.stream(["1"], 2, options)).toEqualTypeOf<
      AsyncGenerator<string | PromiseSettledResult<string>, void, undefined>
    >();
    expectTypeOf(pipeline.stream(["1"], { settled })).toEqualTypeOf<
      AsyncGenerator<string | PromiseSettledResult<string>, void, undefined>
    >();
  });

  it("types the context template with the pipeline's context", () => {
    interface Tenant {
      tenant: string;
    }
    const tenantPipeline = new Pipeline([
      new Stage("tag", (value: number, context: Tenant) => `${context.tenant}:${String(value)}`),
    ]);
    expectTypeOf(tenantPipeline.stream([1], { context: { tenant: "acme" } })).toEqualTypeOf<
      AsyncGenerator<string, void, undefined>
    >();
    // @ts-expect-error the template must fit the context type
    tenantPipeline.stream([1], { context: { tenant: 1 } });
  });
});
