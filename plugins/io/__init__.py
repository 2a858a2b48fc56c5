"""Importers and exporters (BVH, glTF)."""
