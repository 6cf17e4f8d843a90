import {
  type CallHandler,
  type DynamicModule,
  type ExecutionContext,
  type MiddlewareConsumer,
  Module,
  type NestInterceptor,
  type NestModule,
  RequestMethod,
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import type { Cluster } from '@pgpulse/core';
import { from, type Observable, switchMap } from 'rxjs';
import { pgpulse } from './express.js';
import { headerNames, type RequestContextOptions } from './request.js';

/** Injection token of the cluster: `constructor(@Inject(PGPULSE_CLUSTER) cluster: Cluster)`. */
export const PGPULSE_CLUSTER = Symbol.for('@pgpulse/web:cluster');

/**
 * What `PgPulseModule.forRoot()` takes: the cluster, and the token headers
 * (RequestContextOptions).
 */
export interface PgPulseModuleOptions extends RequestContextOptions {
  /** The cluster each request's context belongs to, provided as PGPULSE_CLUSTER. */
  readonly cluster: Cluster;
}

/** Puts the request's token in the response header once the handler is done, if it wrote. */
class TokenInterceptor implements NestInterceptor {
  constructor(
    private readonly cluster: Cluster,
    private readonly header: string,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const res = context
      .switchToHttp()
      .getResponse<{ setHeader?(name: string, value: string): void }>();
    return next.handle().pipe(
      switchMap((value: unknown) =>
        from(
          this.cluster.consistencyToken().then((token) => {
            if (token && typeof res.setHeader === 'function') res.setHeader(this.header, token);
            return value;
          }),
        ),
      ),
    );
  }
}

/**
 * NestJS (on its Express platform): `PgPulseModule.forRoot({ cluster })` in the root module's
 * imports makes every request its own pgpulse context (joined to the writes behind the token
 * header), returns a request's token in the response header when it wrote, and provides the
 * cluster as PGPULSE_CLUSTER everywhere (a global module).
 */
// biome-ignore lint/complexity/noStaticOnlyClass: NestJS's convention for a configurable module (TypeOrmModule.forRoot, ConfigModule.forRoot).
export class PgPulseModule {
  static forRoot(options: PgPulseModuleOptions): DynamicModule {
    const { response } = headerNames(options);
    const middleware = pgpulse(options.cluster, options);
    class PgPulseRootModule implements NestModule {
      configure(consumer: MiddlewareConsumer): void {
        consumer.apply(middleware).forRoutes({ path: '{*splat}', method: RequestMethod.ALL });
      }
    }
    // The decorator, applied as a call: no decorator syntax needed in the package's build.
    Module({})(PgPulseRootModule);
    return {
      module: PgPulseRootModule,
      global: true,
      providers: [
        { provide: PGPULSE_CLUSTER, useValue: options.cluster },
        ...(response === undefined
          ? []
          : [
              {
                provide: APP_INTERCEPTOR,
                useValue: new TokenInterceptor(options.cluster, response),
              },
            ]),
      ],
      exports: [PGPULSE_CLUSTER],
    };
  }
}
