/**
 * Typed services on the raw ttrpc server and client: handlers and stubs that take and give decoded
 * messages, with each method's request and answer types read from the service's .proto definition.
 * A request that does not decode is answered InvalidArgument before any handler runs.
 */
import type protobuf from 'protobufjs';
import { messageCodec, protoRoot, type MessageCodec, type MessageInit } from '../proto/messages.js';
import type { CallOptions, TtrpcClient } from './client.js';
import { RpcError, StatusCode } from './errors.js';
import type { CallContext, Handler } from './server.js';

/** Method name → [request, answer], e.g. TaskMethods in proto/task.ts: `M extends MethodTable<M>`. */
export type MethodTable<M> = { [K in keyof M]: [unknown, unknown] };

/** Handlers for some of a service's methods; those left out are answered Unimplemented. */
export type ServiceHandlers<M extends MethodTable<M>> = {
  [K in keyof M]?: (request: M[K][0], call: CallContext) => Promise<MessageInit<M[K][1]>> | MessageInit<M[K][1]>;
};

/** A client stub: one function per method. */
export type ServiceStub<M extends MethodTable<M>> = {
  [K in keyof M]: (request: MessageInit<M[K][0]>, options?: CallOptions) => Promise<M[K][1]>;
};

interface MethodCodecs {
  request: MessageCodec<unknown>;
  response: MessageCodec<unknown>;
}

/** Each method of `serviceName` with the codecs of its request and answer, from the .proto files. */
export function serviceMethods(serviceName: string): Map<string, MethodCodecs> {
  const service: protobuf.Service = protoRoot().lookupService(serviceName);
  const methods = new Map<string, MethodCodecs>();
  for (const method of service.methodsArray) {
    methods.set(method.name, {
      request: messageCodec(fullName(method.resolvedRequestType!)),
      response: messageCodec(fullName(method.resolvedResponseType!)),
    });
  }
  return methods;
}

/** Raw handlers for TtrpcServer.register(serviceName, …). A name the service lacks is a programming error. */
export function bindService<M extends MethodTable<M>>(serviceName: string, handlers: ServiceHandlers<M>): Record<string, Handler> {
  const methods = serviceMethods(serviceName);
  const raw: Record<string, Handler> = {};
  for (const [name, handler] of Object.entries(handlers) as [string, ServiceHandlers<M>[keyof M]][]) {
    if (!handler) continue;
    const codecs = methods.get(name);
    if (!codecs) throw new Error(`ttrpc: ${serviceName} has no method ${name}`);
    raw[name] = async (payload, call) => {
      let request: unknown;
      try {
        request = codecs.request.decode(payload);
      } catch (err) {
        throw new RpcError(StatusCode.InvalidArgument, (err as Error).message, { cause: err });
      }
      const answer = await handler(request as never, call);
      return codecs.response.encode(answer ?? {});
    };
  }
  return raw;
}

/** A stub calling `serviceName` through `client`. */
export function serviceStub<M extends MethodTable<M>>(client: TtrpcClient, serviceName: string): ServiceStub<M> {
  const stub: Record<string, (request: unknown, options?: CallOptions) => Promise<unknown>> = {};
  for (const [name, codecs] of serviceMethods(serviceName)) {
    stub[name] = async (request, options) => {
      const answer = await client.call(serviceName, name, codecs.request.encode(request ?? {}), options);
      return codecs.response.decode(answer);
    };
  }
  return stub as ServiceStub<M>;
}

function fullName(type: protobuf.Type): string {
  return type.fullName.replace(/^\./, '');
}
