"""An independent fake of the Hugging Face Hub (API, resolve, CDN) for offline tests; see README.md."""
