-- Order lines carry an id (issue 10): the id the line had in the cart (`line_<32 hex>`), so a
-- shipment names the units it carries by line (`{line_id, quantity}`). Lines placed before
-- this migration get a fresh random id of the same form.
ALTER TABLE order_lines ADD COLUMN line_id TEXT NOT NULL DEFAULT '';
UPDATE order_lines SET line_id = 'line_' || lower(hex(randomblob(16))) WHERE line_id = '';
CREATE UNIQUE INDEX order_lines_line_id ON order_lines (order_id, line_id);
-- Shipments recorded before name their lines' ids too.
UPDATE shipments SET lines = (
  SELECT json_group_array(json_set(j.value, '$.line_id',
    (SELECT l.line_id FROM order_lines l
     WHERE l.order_id = shipments.order_id AND l.position = json_extract(j.value, '$.position'))))
  FROM json_each(shipments.lines) j);
