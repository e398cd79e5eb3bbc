"""`mainline doctor`: every connection and permission Mainline needs, checked for real, one line
each, with the fix when it fails. Nothing here changes production: the only writes are a tiny
image pushed to the registry (`mainline-doctor:probe`) and GitHub installation tokens."""
