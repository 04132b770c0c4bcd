-- Schema v8: indexes for inboxes scoped to one org node. A district admin's
-- unfiltered inbox (WHERE district = ? ORDER BY created_at DESC) and
-- overdue list (WHERE district = ? AND open AND due_at < ? ORDER BY due_at)
-- sorted every case of the district without them (0.6-2.8 s at 1,000,000
-- cases).
CREATE INDEX cases_district_created ON cases (district, created_at, id);
CREATE INDEX cases_street_created ON cases (street, created_at, id);
CREATE INDEX cases_community_created ON cases (community, created_at, id);
CREATE INDEX cases_assignee_created ON cases (assignee, created_at, id) WHERE assignee != '';
CREATE INDEX cases_district_due ON cases (district, due_at, id) WHERE state IN ('received', 'dispatched', 'in_progress', 'returned');
CREATE INDEX cases_street_due ON cases (street, due_at, id) WHERE state IN ('received', 'dispatched', 'in_progress', 'returned');
CREATE INDEX cases_community_due ON cases (community, due_at, id) WHERE state IN ('received', 'dispatched', 'in_progress', 'returned');
-- Merge candidates: with id in the index the planner reads them in order
-- from it instead of walking the community's cases by creation time.
DROP INDEX cases_merge;
CREATE INDEX cases_merge ON cases (community, category, building, created_at, id);
