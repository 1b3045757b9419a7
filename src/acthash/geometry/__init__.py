"""Exact linear-region geometry of piecewise-linear networks: region boundaries along lines
(:func:`region_segment`), regions crossed between inputs (:func:`regions_between`), their
sampled counterparts, and the exact partition of a plane (:func:`plane_partition`)."""

from acthash.geometry.local_complexity import (
    LocalComplexity,
    LocalComplexityCallback,
    cross_polytope_directions,
    local_complexity,
    plane_complexity_error,
    plane_local_complexity,
)
from acthash.geometry.planes import PlanePartition, grid_codes, plane_partition, plane_through
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
           "sampled_segment", "sampled_regions_between", "codes_along", "PlanePartition",
           "plane_partition", "plane_through", "grid_codes", "LocalComplexity",
           "local_complexity", "cross_polytope_directions", "LocalComplexityCallback",
           "plane_local_complexity", "plane_complexity_error"]
