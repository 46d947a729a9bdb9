-- Notifications are recorded as queued when routing plans them, then sent or failed when delivered.
ALTER TABLE notify.deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE notify.deliveries ADD CONSTRAINT deliveries_status_check CHECK (status IN ('queued', 'sent', 'failed'));
