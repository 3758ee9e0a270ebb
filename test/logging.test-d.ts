import pino from "pino";
import { describe, expectTypeOf, it } from "vitest";
import winston from "winston";
import { loggingMiddleware, type LogFields, type Logger } from "../src/middlewares/index.js";

describe("loggingMiddleware types", () => {
  it("accepts console, pino (and its children) and winston as loggers", () => {
    expectTypeOf(console).toExtend<Logger>();
    expectTypeOf(pino()).toExtend<Logger>();
    expectTypeOf(pino().child({ job: "nightly" })).toExtend<Logger>();
    expectTypeOf(winston.createLogger()).toExtend<Logger>();
    loggingMiddleware({ logger: pino(), level: "debug", includeValue: true });
    loggingMiddleware({ logger: winston.createLogger(), level: "verbose", order: "message-first" });
  });

  it("types the fields object, whose keys beyond stageName are optional", () => {
    expectTypeOf<LogFields["stageName"]>().toEqualTypeOf<string>();
    expectTypeOf<LogFields["durationMs"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<LogFields["attempt"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<LogFields["error"]>().toBeUnknown();
    expectTypeOf<{ stageName: "fetch" }>().toExtend<LogFields>();
  });

  it("rejects options of the wrong type", () => {
    // @ts-expect-error -- order is "message-first" or "fields-first"
    loggingMiddleware({ order: "pino" });
    // @ts-expect-error -- includeValue is a boolean
    loggingMiddleware({ includeValue: "yes" });
    // @ts-expect-error -- level is a method name
    loggingMiddleware({ level: 30 });
  });
});
