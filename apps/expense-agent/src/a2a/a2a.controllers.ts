import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import { A2AEndpoint, A2AHttpTransport } from 'nestjs-a2a-auth';

type Req = Parameters<A2AHttpTransport['jsonRpc']>[0];

/**
 * The A2A v1.0 JSON-RPC binding at `POST /a2a/jsonrpc` (the card's `JSONRPC` interface). A Nest route, so the
 * library's global guard authenticates first: no token or a bad one is HTTP 401 with `WWW-Authenticate`, never a
 * 200 envelope. Per-skill scopes, the caller and `A2A-Version` are handled by {@link A2AHttpTransport}.
 */
@A2AEndpoint()
@Controller('a2a')
export class A2AJsonRpcController {
  constructor(private readonly a2a: A2AHttpTransport) {}

  /** Any JSON-RPC method of A2A v1.0 (`SendMessage`, `SendStreamingMessage`, `GetTask`, `GetExtendedAgentCard`, …). */
  @Post('jsonrpc')
  @HttpCode(200)
  rpc(@Req() req: Req, @Res() res: unknown, @Body() body: unknown): Promise<void> {
    return this.a2a.jsonRpc(req, res, body);
  }
}

/**
 * The A2A v1.0 HTTP+JSON binding at the root (the card's `HTTP+JSON` interface): `POST /message:send`,
 * `POST /message:stream`, `GET /tasks`, `GET /tasks/{id}`, `POST /tasks/{id}:cancel`, `GET|POST /tasks/{id}:subscribe`,
 * and the push-notification configs `POST|GET /tasks/{id}/pushNotificationConfigs` and
 * `GET|DELETE /tasks/{id}/pushNotificationConfigs/{configId}` (this agent does not offer push notifications, so those
 * answer `PushNotificationNotSupportedError`). `GET /extendedAgentCard` is served by the library itself.
 *
 * A literal `:` in a route is spelled differently by express (`\\:`) and fastify (`::`), so the routes capture
 * the segment with a parameter and the transport checks the action.
 */
@A2AEndpoint()
@Controller()
export class A2ARestController {
  constructor(private readonly a2a: A2AHttpTransport) {}

  /** `POST /message:send` and `POST /message:stream`; any other `/message…` segment is 404. */
  @Post('message:action')
  @HttpCode(200)
  message(@Param('action') _action: string, @Req() req: Req, @Res() res: unknown, @Body() body: unknown): Promise<void> {
    // The pattern also matches `/messagesend`, `/MESSAGE:send` (express is case-insensitive) or `/message:send/`:
    // only the exact paths of the binding are served.
    const path = ((req as { originalUrl?: string }).originalUrl ?? req.url ?? '').split('?')[0];
    if (path === '/message:send') return this.a2a.sendMessage(req, res, body);
    if (path === '/message:stream') return this.a2a.streamMessage(req, res, body);
    return this.a2a.taskAction(req, res, 'unknown:route', 'POST');
  }

  /** `GET /tasks`: the caller's tasks. */
  @Get('tasks')
  list(@Req() req: Req, @Res() res: unknown, @Query() query: Record<string, unknown>): Promise<void> {
    return this.a2a.listTasks(req, res, query);
  }

  /** `GET /tasks/{id}` and `GET /tasks/{id}:subscribe`. */
  @Get('tasks/:id')
  get(@Param('id') id: string, @Req() req: Req, @Res() res: unknown, @Query() query: Record<string, unknown>): Promise<void> {
    return this.a2a.taskAction(req, res, id, 'GET', query);
  }

  /** `POST /tasks/{id}:cancel` and `POST /tasks/{id}:subscribe`. */
  @Post('tasks/:id')
  @HttpCode(200)
  post(@Param('id') id: string, @Req() req: Req, @Res() res: unknown): Promise<void> {
    return this.a2a.taskAction(req, res, id, 'POST');
  }

  /** `POST /tasks/{id}/pushNotificationConfigs`: 201 with the config. */
  @Post('tasks/:id/pushNotificationConfigs')
  createPushConfig(@Param('id') id: string, @Req() req: Req, @Res() res: unknown, @Body() body: unknown): Promise<void> {
    return this.a2a.createPushNotificationConfig(req, res, id, body);
  }

  /** `GET /tasks/{id}/pushNotificationConfigs`. */
  @Get('tasks/:id/pushNotificationConfigs')
  listPushConfigs(@Param('id') id: string, @Req() req: Req, @Res() res: unknown, @Query() query: Record<string, unknown>): Promise<void> {
    return this.a2a.listPushNotificationConfigs(req, res, id, query);
  }

  /** `GET /tasks/{id}/pushNotificationConfigs/{configId}`. */
  @Get('tasks/:id/pushNotificationConfigs/:configId')
  getPushConfig(@Param('id') id: string, @Param('configId') configId: string, @Req() req: Req, @Res() res: unknown): Promise<void> {
    return this.a2a.getPushNotificationConfig(req, res, id, configId);
  }

  /** `DELETE /tasks/{id}/pushNotificationConfigs/{configId}`: 204. */
  @Delete('tasks/:id/pushNotificationConfigs/:configId')
  deletePushConfig(@Param('id') id: string, @Param('configId') configId: string, @Req() req: Req, @Res() res: unknown): Promise<void> {
    return this.a2a.deletePushNotificationConfig(req, res, id, configId);
  }
}
