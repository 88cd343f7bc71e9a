import { Body, Controller, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import { A2AEndpoint, A2AHttpTransport } from 'nestjs-a2a-auth';
import { extractBearerToken } from 'nestjs-a2a-auth/core';
import { incomingCall, type AssistantBinding } from './incoming-call';

type Req = Parameters<A2AHttpTransport['jsonRpc']>[0];

/**
 * Runs `serve` with the caller's token in {@link incomingCall}. This decides nothing: on an A2A endpoint the
 * library's transport authenticates the call and checks the skill's scopes before the executor runs (401/403
 * otherwise), so a missing or malformed header only means that no token is carried (and the transport refuses).
 */
function withIncomingCall(req: Req, binding: AssistantBinding, serve: () => Promise<void>): Promise<void> {
  let token: string;
  try {
    token = extractBearerToken({ authorization: req.headers.authorization });
  } catch {
    return serve();
  }
  return incomingCall.run({ token, binding }, serve);
}

/** The A2A v1.0 JSON-RPC binding at `POST /a2a/jsonrpc` (the card's `JSONRPC` interface), behind the library's guard. */
@A2AEndpoint()
@Controller('a2a')
export class AssistantJsonRpcController {
  constructor(private readonly a2a: A2AHttpTransport) {}

  /** Any JSON-RPC method of A2A v1.0; `SendMessage` runs `file-expense-for-me`. */
  @Post('jsonrpc')
  @HttpCode(200)
  rpc(@Req() req: Req, @Res() res: unknown, @Body() body: unknown): Promise<void> {
    return withIncomingCall(req, 'JSONRPC', () => this.a2a.jsonRpc(req, res, body));
  }
}

/**
 * The A2A v1.0 HTTP+JSON binding at the root (the card's `HTTP+JSON` interface): `POST /message:send`. The skill
 * answers with a message at once, so there are no tasks to read, cancel or stream; other actions are 404.
 */
@A2AEndpoint()
@Controller()
export class AssistantRestController {
  constructor(private readonly a2a: A2AHttpTransport) {}

  /** `POST /message:send`; any other `/message…` segment is 404. */
  @Post('message:action')
  @HttpCode(200)
  message(@Param('action') _action: string, @Req() req: Req, @Res() res: unknown, @Body() body: unknown): Promise<void> {
    const path = ((req as { originalUrl?: string }).originalUrl ?? req.url ?? '').split('?')[0];
    if (path === '/message:send') return withIncomingCall(req, 'HTTP+JSON', () => this.a2a.sendMessage(req, res, body));
    return this.a2a.taskAction(req, res, 'unknown:route', 'POST');
  }
}
