"""The regional sharing center (地方影像云数据共享中心) emulator: receives hop 1 with its files, serves them in a
browser and over DICOMweb, and forwards hop 2 to the province through a durable outbox."""

from sandbox.center.app import create_app

__all__ = ["create_app"]
