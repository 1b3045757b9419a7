"""Exact linear-region geometry of piecewise-linear networks: region boundaries along lines
(:func:`region_segment`), regions crossed between inputs (:func:`regions_between`), and their
sampled counterparts."""

from acthash.geometry.regions import (
    Crossings,
    Segment,
    codes_along,
    preactivations,
    region_segment,
    regions_between,
    sampled_regions_between,
    sampled_segment,
)

__all__ = ["Segment", "Crossings", "preactivations", "region_segment", "regions_between",
           "sampled_segment", "sampled_regions_between", "codes_along"]
