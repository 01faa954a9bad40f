"""The builder: network definition -> optimized program -> plan bytes."""
