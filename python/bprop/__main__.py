"""python -m bprop --cmake-dir | --include-dir | --version | --config: facts for native builds,
and what the kernels run with on this machine (bp.show_config())."""

from __future__ import annotations

import argparse
import sys

from . import __version__, _native, show_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bprop", description="Where this bprop keeps its C++ core."
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--cmake-dir", action="store_true", help="the directory of bpropConfig.cmake (bprop_DIR)"
    )
    group.add_argument("--include-dir", action="store_true", help="the C++ include directory")
    group.add_argument("--version", action="store_true", help="the bprop version")
    group.add_argument(
        "--config",
        action="store_true",
        help="the CPU, its caches, the instruction set, threads and GEMM blocking in use",
    )
    args = parser.parse_args(argv)
    try:
        if args.cmake_dir:
            print(_native.cmake_dir())
        elif args.include_dir:
            print(_native.include_dir())
        elif args.config:
            show_config()
        else:
            print(__version__)
    except FileNotFoundError as error:
        print(f"python -m bprop: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
