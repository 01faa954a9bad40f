"""Plugins: the plugin registry and plugin interfaces."""
