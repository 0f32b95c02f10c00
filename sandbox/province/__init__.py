"""The provincial index module (医保影像云索引共享模块): receives hop 2 and serves the stored indexes."""

from sandbox.province.app import create_app

__all__ = ["create_app"]
