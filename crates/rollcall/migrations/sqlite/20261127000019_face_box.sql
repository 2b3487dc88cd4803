-- Where the face of a reference photo is, as the detector found it when the photo was
-- registered ("x1,y1,x2,y2" in pixels of the decoded photo): `reindex` embeds that face again,
-- not the photo's subject, so a person registered from a group photo by choosing a face keeps
-- theirs. NULL for photos registered before: their subject.
ALTER TABLE users ADD COLUMN face_box TEXT;
ALTER TABLE faces ADD COLUMN face_box TEXT;
