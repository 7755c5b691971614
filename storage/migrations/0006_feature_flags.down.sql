DROP TABLE experiment_settings;
DELETE FROM feature_flags WHERE name IN ('enable_variant_b', 'enable_orb', 'enable_strat',
    'enable_ttm', 'enable_satyland', 'enable_futures');
