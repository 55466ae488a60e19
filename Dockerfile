# dinhdanh: multi-stage, non-root, production dependencies only, no keys baked in.
# Production runs with DATABASE_URL (external PostgreSQL) and MASTER_KEY (or a mounted MASTER_KEY_FILE).
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; the `node` devDependency is not needed on an image that already has Node 24.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY migrations ./migrations
COPY static ./static
COPY bin ./bin
USER node
EXPOSE 3000
# Liveness, not readiness: a node waiting out a database outage must not be restarted (the load balancer reads /readyz).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM starts a graceful stop (SHUTDOWN_GRACE_SECONDS + SHUTDOWN_TIMEOUT_SECONDS): give it that long before SIGKILL.
STOPSIGNAL SIGTERM
CMD ["node", "--max-semi-space-size=8", "src/cli/main.ts", "start"]
