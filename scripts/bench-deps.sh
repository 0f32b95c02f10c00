#!/usr/bin/env bash
# What `make bench` needs beyond the venv: Debian `wrk` (apt-get when missing) and Prism, the OpenAPI mock the
# province is compared with (npm, into the git-ignored .bench/). Never fails the build: a benchmark whose
# tool is missing says so in its row.
set -u
if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "正在安装 / installing Debian package: wrk"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null 2>&1 || true
        apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1 || echo "apt-get install wrk failed"
    else
        echo "缺少 wrk / wrk missing (not root or no apt-get): the province-vs-Prism benchmark will say so"
    fi
fi
if [ ! -x .bench/node_modules/.bin/prism ]; then
    if command -v npm >/dev/null 2>&1; then
        echo "正在安装 / installing Prism (@stoplight/prism-cli 5) into .bench/"
        mkdir -p .bench
        npm install --prefix .bench --no-audit --no-fund --silent @stoplight/prism-cli@5 >/dev/null 2>&1 \
            || echo "npm install @stoplight/prism-cli failed: the Prism rows will say so"
    else
        echo "缺少 npm / npm missing: the Prism rows will say so"
    fi
fi
exit 0
