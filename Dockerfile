# syntax=docker/dockerfile:1
# The stampede image: `docker build -t stampede:latest .` from the repository root.
#   docker run --rm stampede:latest run --target http://host:8080 --reports /tmp/reports
#   docker run --rm -p 8080:8080 stampede:latest serve --listen 0.0.0.0:8080
# deploy/kubernetes/ runs it as N load generators and a merge. Pass
# --build-arg STAMPEDE_GIT_REVISION=$(git rev-parse HEAD) to record the revision in reports
# (build.rs takes it; it cannot read one from the context, which leaves .git out).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
ARG STAMPEDE_GIT_REVISION
# The registry and target/ are BuildKit caches (kept between builds, not in the image): the
# binary is copied out of target/ in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    if [ -z "${STAMPEDE_GIT_REVISION:-}" ]; then unset STAMPEDE_GIT_REVISION; fi \
    && cargo build --release --locked -p stampede \
    && install -m 0755 target/release/stampede /usr/local/bin/stampede

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/stampede stampede
COPY --from=build /usr/local/bin/stampede /usr/local/bin/stampede
# The profiles: the reference one is also built into the binary (the default of --profile).
COPY scenarios/ /etc/stampede/scenarios/
USER 10001
# Relative paths (reports/ by default) land in the user's home.
WORKDIR /home/stampede
ENTRYPOINT ["stampede"]
CMD ["--help"]
