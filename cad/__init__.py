"""Emergency centres (CAD): incidents in (EIDO), signed status feedback out."""
