# syntax=docker/dockerfile:1
# One image for every process of stellaops-workflows. The default command runs the API; the worker and the
# migrations run the same image with another command (see docker-compose.yml):
#   node --import tsx workers/main.ts         # worker (WORKER_MODE saga, effect or combined; ops port 9464)
#   node --import tsx scripts/migrate.ts      # SQL migrations, under an advisory lock
#   node --import tsx scripts/saga-streams.ts # the JetStream streams of sagas, created when missing
# `node --import tsx` rather than `npx tsx`: one process, so SIGTERM reaches the app's graceful shutdown.
ARG NODE_IMAGE=node:20.20-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# tsx is a runtime dependency: dev tooling (tsc, eslint, vitest) stays out of the image.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    API_HOST=0.0.0.0 \
    API_PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
# Sources stay root-owned and read-only for the process; tsx caches its transforms under /tmp.
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.API_PORT || 3000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--import", "tsx", "api/server.ts"]
