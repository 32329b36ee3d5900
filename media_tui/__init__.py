"""media-tui: a terminal media manager for Cloudinary + Supabase, or a local library."""

__version__ = "0.1.0"
