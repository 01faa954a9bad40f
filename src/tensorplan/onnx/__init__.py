"""The ONNX front door: OnnxParser turns ONNX models into network layers."""

from .parser import OnnxParser, ParserError

__all__ = ["OnnxParser", "ParserError"]
