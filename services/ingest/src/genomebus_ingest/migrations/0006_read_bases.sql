-- Bases of both mates, counted by the check: alignment cuts a sample into chunks only when it
-- holds more than one chunk's worth (a sample that fits is aligned from the files as sent).
ALTER TABLE samples ADD COLUMN read_bases bigint;
