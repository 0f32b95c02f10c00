#!/usr/bin/env bash
# Install the Debian packages the tests need when they are missing (dcmtk, chromium, CJK fonts, wrk, unzip). Never fails the build:
# a test that needs a missing tool skips with the reason.
set -u
need=()
command -v dcmdump >/dev/null 2>&1 || need+=(dcmtk)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v wrk >/dev/null 2>&1 || need+=(wrk)  # the benchmark's wrk script is tested too
command -v unzip >/dev/null 2>&1 || need+=(unzip)  # a message's pack is tested with it
[ -n "$(ls /usr/share/fonts/opentype/noto/NotoSansCJK* /usr/share/fonts/truetype/wqy/* 2>/dev/null | head -1)" ] || need+=(fonts-wqy-microhei)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "缺少系统软件包 / missing Debian packages: ${need[*]} (not root or no apt-get; related tests will skip)"
    exit 0
fi
echo "正在安装 / installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
    || echo "apt-get install ${need[*]} failed; related tests will skip"
exit 0
