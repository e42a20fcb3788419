"""Bench-only settings: the product's settings plus two reference views (bench/benchsite/urls)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.benchsite.urls"
